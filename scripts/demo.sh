#!/usr/bin/env bash
# Thin wrapper kept for compatibility: the demo is scripts/demo.py (`make demo`, `make demo QUICK=1`).
# Usage: scripts/demo.sh path/to/eta [demo.py options, e.g. --quick]
set -euo pipefail
ETA=${1:?usage: scripts/demo.sh path/to/eta [--quick] [--requests N] [--routers a,b]}
shift
exec python3 "$(dirname "$0")/demo.py" --eta "$ETA" "$@"
