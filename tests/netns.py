"""Network namespaces for fault tests: a scenario (a server and its bots in one process) runs in
a namespace of its own, whose loopback is the only network, and nftables rules there drop a share
of one participant's UDP datagrams, or rate-limit them.

This kernel has no netem (``tc qdisc ... netem``: "Specified qdisc kind is unknown"), so delay,
jitter and reordering cannot be injected; loss comes from nftables (``numgen random mod 100 < N
drop``), rate limits from nftables policing (``limit rate over``). Namespaces need root (or
``ip netns add`` being allowed); where they cannot be made, :func:`unavailable` says why and the
tests skip with that reason.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from system_packages import ensure_command

__all__ = ["SCENARIO", "namespace", "run_scenario", "unavailable"]

SCENARIO = Path(__file__).with_name("netns_scenario.py")
_names = itertools.count()


def unavailable() -> str | None:
    """Why namespaces cannot be used here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    name = f"rtcroom-probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        return f"ip netns add was refused: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return None


@contextmanager
def namespace() -> Iterator[str]:
    """A fresh namespace with its loopback up, and nft available; deleted afterwards."""
    ensure_command("nft", "nftables")
    name = f"rtcroom-test-{os.getpid()}-{next(_names)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True,
                       capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def run_scenario(ns: str, *args: str, timeout: float = 240,
                 script: Path = SCENARIO) -> dict[str, Any]:
    """Run ``script`` (tests/netns_scenario.py unless told) with ``args`` inside ``ns``; the JSON
    it prints last."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SCENARIO.parent), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(script), *args],
                            capture_output=True, text=True, timeout=timeout, env=env,
                            check=False)
    if result.returncode != 0:
        raise AssertionError(f"scenario {args} failed ({result.returncode}):\n"
                             f"{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
