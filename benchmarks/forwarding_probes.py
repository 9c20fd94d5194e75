"""What would moving more of the SFU's receive path native save? Two probes on the forwarding
benchmark's 2 x 3 workload (benchmarks/forwarding.py), each alternated with the real server in
runs of its own, in one invocation:

- "bookkeeping": `PublishedTrack._on_rtp` cut to the header parse, the keyframe test and
  `forward_all` (no receive statistics, NACKs, packet cache, rates or audio levels): an upper
  bound on what a native version of that Python could gain;
- "drain": each tapped ICE socket read until it is empty at every wake-up (what a `recvmmsg`
  reader would batch), counting datagrams per wake-up.

    .venv/bin/python benchmarks/forwarding_probes.py [--pairs 3] [--seconds 10]

Not a product path: the probes patch the server process (its own module, and asyncio's reader
of the socket) only inside this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forwarding  # noqa: E402
from rtcroom.aiortc_ext import rtp  # noqa: E402
from rtcroom.server.sfu import router  # noqa: E402

_wakes = [0, 0]


def _bookkeeping_cut(self: router.PublishedTrack, data: bytes, arrival_time_ms: int) -> None:
    now = time.monotonic()
    h = router.parse_header(data)
    if self._starting:
        self._start_forwarders()
    test = self._keyframe_tests.get(h.payload_type)
    keyframe = test is not None and test(data, h.payload_offset, h.payload_end)
    if h.ssrc not in self.ssrcs:
        self._new_stream(h.ssrc)
    _, wanted, queued = router.forward_all(data, keyframe, now, None, self._forwarders)
    if wanted is not None:
        self.request_keyframe(wanted, now)
    if queued:
        router.release(queued)


def _draining_tap() -> None:
    tap_init = rtp._TransportTap.__init__

    def __init__(self: rtp._TransportTap, transport: object) -> None:
        tap_init(self, transport)  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        for protocol in self.protocols:
            sock = protocol.transport._sock  # type: ignore[attr-defined]

            def ready(sock: object = sock, protocol: object = protocol) -> None:
                _wakes[0] += 1
                while True:
                    try:
                        data, addr = sock.recvfrom(65536)  # type: ignore[attr-defined]
                    except (BlockingIOError, InterruptedError):
                        return
                    except OSError as exc:
                        protocol.error_received(exc)  # type: ignore[attr-defined]
                        return
                    _wakes[1] += 1
                    protocol.datagram_received(data, addr)  # type: ignore[attr-defined]

            loop._remove_reader(sock.fileno())  # type: ignore[attr-defined]
            loop._add_reader(sock.fileno(), ready)  # type: ignore[attr-defined]

    rtp._TransportTap.__init__ = __init__  # type: ignore[method-assign]

    def report() -> None:
        print(f"  drain: {_wakes[1]} datagrams in {_wakes[0]} wake-ups", file=sys.stderr)

    import atexit
    atexit.register(report)


# The spawned server process imports this module as its main module: patch it there only.
_PROBE = os.environ.get("RTCROOM_FORWARDING_PROBE") if __name__ == "__mp_main__" else None
if _PROBE == "bookkeeping":
    router.PublishedTrack._on_rtp = _bookkeeping_cut  # type: ignore[method-assign]
elif _PROBE == "drain":
    _draining_tap()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        r = forwarding.run("forward", 2, 3, args.seconds, False, (640, 480))
        row = forwarding.describe(args.one, 2, 3, r)
        print(f"RESULT {row['packets_per_cpu_s']}")
        return
    for probe in ("bookkeeping", "drain"):
        results: dict[str, list[float]] = {"real": [], probe: []}
        for _ in range(args.pairs):
            for name in ("real", probe):
                env = {**os.environ, "RTCROOM_FORWARDING_PROBE": name}
                out = subprocess.run([sys.executable, __file__, "--one", name, "--seconds",
                                      str(args.seconds)], env=env, capture_output=True,
                                     text=True, check=True)
                print(out.stdout.strip().splitlines()[0])
                if "drain:" in out.stderr:
                    print(out.stderr[out.stderr.index("drain:"):].splitlines()[0])
                results[name].append(float(out.stdout.split("RESULT ")[1]))
        print(f"{probe}: packets sent per CPU-second, alternated: "
              + ", ".join(f"{p / 1000:.1f}k" for p in results[probe]) + " vs real "
              + ", ".join(f"{r / 1000:.1f}k" for r in results["real"]))


if __name__ == "__main__":
    main()
