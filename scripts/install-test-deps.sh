#!/usr/bin/env bash
# Installs the system packages the test suite runs for real: PostgreSQL,
# nats-server (JetStream), promtool, Chromium, openssl and unzip; then helm (scripts/install-helm.sh). Debian only; needs root (CI runs as root).
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
# promtool, Prometheus's linter of /metrics output.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Headless Chromium, driven by playwright-core in the dashboard's page test.
[ -x /usr/bin/chromium ] || missing+=(chromium)
# openssl, for the throwaway certificate of the SMPP-over-TLS test.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# unzip, for the helm binary the chart tests use (scripts/install-helm.sh).
command -v unzip >/dev/null 2>&1 || missing+=(unzip)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Installed for their binaries only: no service may start (the prometheus package would start a server on :9090).
  no_services=/usr/sbin/policy-rc.d
  if [ ! -e "$no_services" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$no_services" && chmod +x "$no_services"
    trap 'rm -f "$no_services"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash "$(dirname "$0")/install-helm.sh"
