#!/usr/bin/env bash
# The bundled demo consortium on a fresh machine: installs the project (into .venv where
# the system Python refuses, see scripts/python-env.sh) and runs `balis demo`.
# Extra arguments go to balis demo (e.g. scripts/demo.sh --port 8080, --check).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python-env.sh
"$PY" -m pip install -q --disable-pip-version-check -e .
exec "$PY" -m balis demo "$@"
