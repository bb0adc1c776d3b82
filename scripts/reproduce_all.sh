#!/usr/bin/env bash
# Reproduce every table of the paper (see python -m scripts.reproduce --help for the options).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PYTHON" -m scripts.reproduce "$@"
