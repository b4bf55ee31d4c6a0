#!/usr/bin/env bash
# The contract's hygiene: buf lint (STANDARD), no breaking change against main,
# and gen/ exactly what `buf generate` makes from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."

npx --no-install buf lint
if git rev-parse --verify -q main >/dev/null; then
  npx --no-install buf breaking --against '.git#branch=main'
fi
npx --no-install buf generate
if [ -n "$(git status --porcelain -- gen)" ]; then
  echo "gen/ differs from what 'buf generate' produces from proto/: run 'npm run generate' and commit gen/" >&2
  git status --short -- gen >&2
  exit 1
fi
