"""Coverage-guided fuzzing (atheris) of the parsers a client's bytes reach: each target of
tests/atheris_targets.py runs in a process of its own (libFuzzer exits the process) from seed
inputs. ``RTCROOM_ATHERIS_RUNS`` sets the runs per target; CI does 50,000."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

atheris = pytest.importorskip("atheris", reason="atheris has no wheel for this platform")

import atheris_targets

RUNS = int(os.environ.get("RTCROOM_ATHERIS_RUNS", "50000"))


@pytest.mark.parametrize("target", sorted(atheris_targets.TARGETS))
def test_parser_survives_coverage_guided_fuzzing(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(atheris_targets.seeds()[target]):
        (corpus / f"seed{i}").write_bytes(seed)
    result = subprocess.run(
        [sys.executable, atheris_targets.__file__, target, f"-runs={RUNS}", "-max_len=8192",
         "-timeout=20", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=1200, check=False)
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+)", result.stderr)
    print(f"\n{target}: {done[-1] if done else '?'} (runs, coverage points); "
          f"corpus grew to {len(list(corpus.iterdir()))} inputs")
    assert result.returncode == 0, result.stderr[-4000:]
    assert done and int(done[-1][0]) >= RUNS
