"""Dominant speaker detection's per-packet cost, against parsing the same audio packets.

Ten speakers send a packet every 20 ms; one 300 ms evaluation period is 150 packets. The
detector's share (150 ``add_level`` calls plus one ``evaluate``) is set beside the least work the
SFU does on those packets anyway: aiortc's ``RtpPacket.parse`` with the audio level extension.
The ratio says how many times cheaper the detector is than that parse.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket

from rtcroom.server.dominantspeaker import INTERVAL, DominantSpeakerDetector

SPEAKERS = 10
PACKET = 0.02
PER_EVALUATION = int(SPEAKERS * INTERVAL / PACKET)
AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def packets() -> list[tuple[int, int, float]]:
    """(speaker, level, time) for one evaluation period: speaker 0 talks (loud, with a dip to
    the noise floor every 8 packets), the others send noise."""
    rng = random.Random(1)
    out = []
    for i in range(PER_EVALUATION):
        speaker, tick = i % SPEAKERS, i // SPEAKERS
        talking = speaker == 0 and tick % 8 != 7
        out.append((speaker, rng.randint(20, 35) if talking else rng.randint(75, 85),
                    tick * PACKET))
    return out


def test_detector(compare: Callable[..., Any], benchmark: Any) -> None:
    detector: DominantSpeakerDetector[int] = DominantSpeakerDetector()
    period = packets()
    clock = [0.0]

    def one_period() -> None:
        base = clock[0]
        for speaker, level, t in period:
            detector.add_level(speaker, level, base + t)
        clock[0] = base + INTERVAL
        detector.evaluate(clock[0])

    compare("dominant speaker, 150 audio packets", "detector", benchmark, one_period)
    assert detector.dominant_speaker == 0


def test_rtp_parse(compare: Callable[..., Any], benchmark: Any) -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(
        headerExtensions=[RTCRtpHeaderExtensionParameters(id=1, uri=AUDIO_LEVEL)]))
    data = []
    for i, (speaker, level, _) in enumerate(packets()):
        packet = RtpPacket(payload_type=111, sequence_number=i, timestamp=960 * i,
                           ssrc=1000 + speaker, payload=bytes(80))
        packet.extensions = HeaderExtensions(audio_level=(True, level))
        data.append(packet.serialize(extensions))

    def parse_all() -> None:
        for raw in data:
            RtpPacket.parse(raw, extensions)

    compare("dominant speaker, 150 audio packets", "rtp_parse", benchmark, parse_all)
    assert RtpPacket.parse(data[0], extensions).extensions.audio_level == (True, packets()[0][1])
