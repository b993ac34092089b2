#!/usr/bin/env bash
# Brings up a local 3-node lab cluster (corosync + corolistener on every node) on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
pnpm --filter @ha/panel -s build >/dev/null   # the panel's UI (served by the master)
exec ./labctl up --nodes "${NODES:-3}" "$@"
