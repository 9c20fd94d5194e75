"""Delay, jitter and reordering without netem (this kernel has none): the datagrams of chosen
UDP ports go to an NFQUEUE (iptables' NFQUEUE target), and this process lets each one go after
``delay`` ± ``jitter`` seconds, on its asyncio loop. Jitter larger than the gap between two
packets reorders them, as netem's does. Only inside a network namespace of the test's own
(tests/netns.py): it changes the namespace's iptables.

Needs iptables and the NetfilterQueue package (built against libnetfilter-queue);
:func:`ensure_netfilterqueue` installs both when missing, as the tests install what they use.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import random
import subprocess
import sys
from types import TracebackType
from typing import Any

from system_packages import ensure_command

__all__ = ["Delay", "ensure_netfilterqueue"]


def ensure_netfilterqueue() -> None:
    ensure_command("iptables", "iptables")
    if importlib.util.find_spec("netfilterqueue") is not None:
        return
    if os.geteuid() != 0:
        raise RuntimeError("NetfilterQueue is missing and only root can install its headers")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-qq", "libnetfilter-queue-dev"],
                [sys.executable, "-m", "pip", "install", "-q", "NetfilterQueue>=1.1"]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")


class Delay:
    """``async with Delay(ports, delay, jitter):`` holds back every datagram from or to
    ``ports``. ``held`` counts them, ``reordered`` those let go after a later arrival."""

    def __init__(self, ports: list[int], delay: float, jitter: float = 0.0,
                 queue: int = 7) -> None:
        self.ports, self.delay, self.jitter, self.queue = ports, delay, jitter, queue
        self.held = self.reordered = 0
        self._arrived = self._released = -1
        self._nfq: Any = None
        self._fd = -1
        self._timers: set[asyncio.TimerHandle] = set()
        self._rules = [["OUTPUT", "-p", "udp", direction, str(port), "-j", "NFQUEUE",
                        "--queue-num", str(queue)]
                       for port in ports for direction in ("--sport", "--dport")]

    async def __aenter__(self) -> Delay:  # noqa: PYI034
        from netfilterqueue import NetfilterQueue

        loop = asyncio.get_running_loop()
        self._nfq = NetfilterQueue()
        self._nfq.bind(self.queue, self._hold)
        self._fd = self._nfq.get_fd()
        loop.add_reader(self._fd, self._nfq.run, False)
        await self._iptables("-A")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._iptables("-D")
        for timer in self._timers:
            timer.cancel()
        asyncio.get_running_loop().remove_reader(self._fd)
        self._nfq.unbind()

    async def _iptables(self, action: str) -> None:
        for rule in self._rules:
            proc = await asyncio.create_subprocess_exec(
                "iptables", action, *rule, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = await proc.communicate()
            if proc.returncode and action == "-A":
                raise RuntimeError(f"iptables {action} {' '.join(rule)}: {err.decode()}")

    def _hold(self, packet: Any) -> None:
        self._arrived += 1
        order = self._arrived
        self.held += 1
        wait = max(0.0, self.delay + random.uniform(-self.jitter, self.jitter))
        timer: asyncio.TimerHandle

        def release() -> None:
            self._timers.discard(timer)
            if order < self._released:
                self.reordered += 1
            self._released = max(self._released, order)
            packet.accept()

        timer = asyncio.get_running_loop().call_later(wait, release)
        self._timers.add(timer)
