"""Where a pacer's CPU goes at 10k packets/s onto a UDP socket, and the ratios to a pure-Python
asyncio pacer, all measured in one run (workloads: asv_bench/pacer.py ``socket_run``).

Sides: "native" is rtcroom's PacedSocket (one native thread, one ``sendmmsg`` per wake-up with
equal-sized packets as UDP GSO datagrams, no GIL), "python" the pure-Python asyncio leaky bucket sleeping until each slot and calling
``sock.send`` (asv_bench/pacer.py SleepingPacer), "driver" rtcroom's asyncio PacedSender over the
native core calling ``sock.send``. Each round runs every side once for CPU (no instrumentation)
and once with release times recorded (for the p99 error), interleaved, so load shifts all alike.

Per packet it prints: total CPU (process_time, the median round: the best round is often one
where load delayed the wake-ups, so bigger batches, less CPU and worse accuracy); its user / kernel split (getrusage,
summed over all rounds; the kernel samples the split at its 4 ms tick, too coarse for the native
side's small user-space share, so no ratio is drawn from it);
the send floor (the same packets sent unpaced the way that side sends: the kernel's UDP path plus
the calls); and the pacer's own share, total minus floor (waking up, deciding, handing over).

    .venv/bin/python benchmarks/pacer_cpu.py [--packets 10000] [--rounds 5]

pytest-benchmark does not fit: a run lasts packets / 10k seconds whatever it costs, and the
figures are differences and sums across runs.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

from asv_bench.pacer import Run, send_floor, socket_run

ROLES = {
    "native": "PacedSocket (native thread, sendmmsg+GSO)",
    "python": "pure-Python asyncio pacer, sock.send",
    "driver": "PacedSender (asyncio) + native core",
}


@dataclass
class Side:
    runs: list[Run] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000, help="packets per run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.packets
    sides = {role: Side() for role in ROLES}
    for _ in range(args.rounds):
        for role, side in sides.items():
            side.runs.append(socket_run(role, n))
            side.floors.append(send_floor(role, n))
            side.p99s.append(socket_run(role, n, record=True).p99_ms())

    def us(seconds: float, runs: int = 1) -> float:
        return seconds / (n * runs) * 1e6

    print(f"{n} packets of 1200 bytes at 10k packets/s onto loopback UDP, {args.rounds} rounds")
    print(f"{'per packet (us)':40} {'total':>6} {'user':>6} {'kernel':>6} {'floor':>6} "
          f"{'own':>6} {'p99 ms':>7}")
    own: dict[str, float] = {}
    total: dict[str, float] = {}
    for role, side in sides.items():
        median = statistics.median(r.cpu for r in side.runs)
        floor = min(side.floors)
        total[role], own[role] = us(median), us(median - floor)
        user = us(sum(r.user for r in side.runs), len(side.runs))
        kernel = us(sum(r.sys for r in side.runs), len(side.runs))
        print(f"{ROLES[role]:40} {total[role]:6.2f} {user:6.2f} {kernel:6.2f} "
              f"{us(floor):6.2f} {own[role]:6.2f} {statistics.median(side.p99s):7.2f}")
    native = sorted(sides["native"].runs, key=lambda r: r.cpu)[len(sides["native"].runs) // 2]
    floor = min(sides["native"].floors)
    thread_own = native.cpu - native.caller_cpu - floor
    print(f"PacedSocket's own {own['native']:.2f} us = handing over (calling thread) "
          f"{us(native.caller_cpu):.2f} + sender thread beyond the send floor "
          f"{us(thread_own):.2f}: {native.wakeups / n:.3f} wake-ups per packet "
          f"({n / native.wakeups:.1f} packets per sendmmsg), {thread_own / native.wakeups * 1e6:.1f} us "
          f"per wake-up")
    print("ratios (this run)")
    for baseline in ("python", "driver"):
        print(f"socket 10k pkt/s, CPU per packet incl. kernel: native is "
              f"{total[baseline] / total['native']:.1f}x less than {baseline}")
        print(f"socket 10k pkt/s, pacer's own CPU (total - send floor): native is "
              f"{own[baseline] / own['native']:.1f}x less than {baseline}")


if __name__ == "__main__":
    main()
