#!/usr/bin/env bash
# The benchmark command (README): pytest-benchmark, ending with the ratios of this run, then the
# asv suite against the installed package (asv's ratios are its track_* results, in "x").
# Extra arguments go to pytest, e.g. `scripts/bench.sh -k audio_level` for one benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/test.sh --co -q >/dev/null
.venv/bin/python -m pip install --quiet asv
.venv/bin/python -m pytest benchmarks --benchmark-enable --benchmark-columns=min,median,ops \
    -p no:cacheprovider "$@"
.venv/bin/asv machine --yes --machine rtcroom-bench >/dev/null
.venv/bin/asv run --python=same --machine rtcroom-bench --show-stderr --quick \
    ${ASV_BENCH:+--bench "$ASV_BENCH"}
