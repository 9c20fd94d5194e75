"""examples/api_tour.py runs from start to end (the part that needs no server)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "api_tour.py"


def test_api_tour_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "bad option refused: bandwidth_profile.video.mode: 'gird'" in result.stdout
    assert "recorded local.mkv: audio (aac), video (h264)" in result.stdout
