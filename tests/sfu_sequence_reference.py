"""Plain-Python twin of the sequence check in the native ReceiveStream
(rtcroom._native.forward, src/native/forward/): which packets of a stream to believe, by
sequence number (RFC 3550 appendix A.1): a jump too large to be loss or reordering is dropped,
unless the next packet follows it, which means the sender restarted its numbering. Without this,
one wild sequence number would move a forwarded stream's numbering (and its SRTP index) so far
that every following packet looked too old. With aiortc's StreamStatistics, the oracle of
ReceiveStream's property test."""

from __future__ import annotations

import enum

MAX_DROPOUT = 3000
MAX_MISORDER = 100


class Verdict(enum.Enum):
    ACCEPT = "accept"
    RESTART = "restart"
    """Accept, and treat the stream as started anew from this packet."""
    DROP = "drop"


class SequenceCheck:
    def __init__(self) -> None:
        self.max_seq: int | None = None
        self._bad_seq: int | None = None

    def check(self, seq: int) -> Verdict:
        if self.max_seq is None:
            self.max_seq = seq
            return Verdict.ACCEPT
        delta = (seq - self.max_seq) & 0xFFFF
        if delta < MAX_DROPOUT:
            self.max_seq = seq
            return Verdict.ACCEPT
        if delta <= 0x10000 - MAX_MISORDER:
            if seq == self._bad_seq:
                self.max_seq, self._bad_seq = seq, None
                return Verdict.RESTART
            self._bad_seq = (seq + 1) & 0xFFFF
            return Verdict.DROP
        return Verdict.ACCEPT  # a duplicate or a late packet
