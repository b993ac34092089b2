#!/usr/bin/env bash
# Runs every test: typecheck, unit tests and the real multi-node lab tests. Needs root (namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== typecheck"
pnpm -s typecheck
echo "== tests"
# Node 20's test runner does not expand globs itself, so list the files here. Lab tests share
# namespaces and CPU, so files run one at a time.
mapfile -t files < <(find shared/test agent/test lab/test db/test panel/test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
mkdir -p artifacts
status=0
node --import tsx --test --test-concurrency=1 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=artifacts/tests.tap "${files[@]}" || status=$?
pass=$(grep -E '^# pass ' artifacts/tests.tap | tail -1 | awk '{print $3}')
fail=$(grep -E '^# fail ' artifacts/tests.tap | tail -1 | awk '{print $3}')
echo "tests: ${pass:-0} passed, ${fail:-0} failed"
exit $status
