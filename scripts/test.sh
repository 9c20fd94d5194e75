#!/usr/bin/env bash
# The test command (README, .ci/run): a venv in .venv, rtcroom built and installed editable with
# its test extras, then the whole suite. Exits non-zero on any failure, and when no test ran
# (pytest's exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
exec .venv/bin/python -m pytest "$@"
