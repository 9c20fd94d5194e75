#!/usr/bin/env bash
# Builds the wheel as cibuildwheel would on this platform (`pip wheel .`, isolated build), installs
# it into a fresh venv with the test extras, and runs the native tests against the installed wheel
# from a directory outside the source tree, so nothing is imported from src/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip wheel --quiet --no-deps -w "$work/dist" "$root"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$(ls "$work"/dist/rtcroom-*.whl)[test]"
cp -r "$root/tests" "$work/tests"
cd "$work"
"$work/venv/bin/python" -c "import rtcroom, sys; assert 'site-packages' in rtcroom.__file__, rtcroom.__file__; print('installed wheel:', rtcroom.__file__)"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider -o asyncio_mode=auto -o asyncio_default_fixture_loop_scope=function tests/test_audio_level.py tests/test_dscp.py tests/test_allocator.py tests/test_pacer.py
