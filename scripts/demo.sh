#!/usr/bin/env bash
# The main job (README): installs rtcroom into .venv, then runs `rtcroom demo`: an embedded room
# server on 127.0.0.1 with bot participants, shown live until Ctrl-C. Arguments go to the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/rtcroom demo "$@"
