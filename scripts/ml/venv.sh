#!/usr/bin/env bash
# The training job's Python environment: the pins of ml/requirements.txt (PyPI wheels) in the venv
# `ml-train` of scripts/lib/python-venv.sh (the one venv implementation; cached under
# ${TRADING_CACHE_DIR:-~/.cache/ai-trading}/python/ml-train-<key>). Prints its python on the last
# line of stdout. (Until this moved here the venv lived in .../ml-venv/<hash>: that folder is no
# longer read and may be deleted.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$ROOT/scripts/lib/python-venv.sh" ml-train -r "$ROOT/ml/requirements.txt"
