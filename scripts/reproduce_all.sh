#!/usr/bin/env bash
# Reproduce every table of the paper (see python -m scripts.reproduce --help for the options).
# Runs in the project's environment, .venv (or the Python that $PYTHON names).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ ! -x .venv/bin/python ]; then
        echo "error: no .venv in $(pwd): set it up first (python3 -m venv .venv &&" \
             ".venv/bin/pip install -r requirements.txt), or name a Python with PYTHON=..." >&2
        exit 1
    fi
    PYTHON=.venv/bin/python
fi
exec "$PYTHON" -m scripts.reproduce "$@"
