"""What the browser tests need, installed when missing: Debian's Chromium and ChromeDriver (apt)
and the unmodified twilio-video.js package (npm), kept in the project's .cache/.

Chromium is driven through Playwright's Python client with executable_path=/usr/bin/chromium, so
no browser build is downloaded; every page it opens is on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from system_packages import ensure_command  # noqa: E402

TWILIO_VIDEO_VERSION = "2.36.0"
NPM_CACHE = ROOT / ".cache" / "npm"

# The flags the project runs Chromium with: no traffic to anywhere but loopback, fake media
# devices and no permission prompts, loopback ICE candidates without mDNS names.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def chromium_path() -> str:
    """/usr/bin/chromium, installed with apt-get when missing (the tests run as root in CI)."""
    return ensure_command("chromium", "chromium", "chromium-driver")


def twilio_video_dist() -> Path:
    """The directory of the unmodified npm package's dist/ (twilio-video.min.js)."""
    package = NPM_CACHE / "node_modules" / "twilio-video"
    script = package / "dist" / "twilio-video.min.js"
    if not script.exists():
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        _run(["npm", "install", "--prefix", str(NPM_CACHE), "--no-audit", "--no-fund",
              f"twilio-video@{TWILIO_VIDEO_VERSION}"])
    return script.parent


def user_data_dir() -> str:
    """A fresh profile directory for one browser."""
    return tempfile.mkdtemp(prefix="rtcroom-chromium-")
