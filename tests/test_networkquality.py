"""Network quality statistics read from twilio-video.js's object shape."""

from __future__ import annotations

from typing import Any

import pytest
from rtcroom.signaling.networkquality import (
    NetworkQualityAudioStats,
    NetworkQualityBandwidthStats,
    NetworkQualityFractionLostStats,
    NetworkQualityLatencyStats,
    NetworkQualityRecvStats,
    NetworkQualitySendStats,
    NetworkQualityStats,
    NetworkQualityVideoStats,
)


def test_minimal_moderate_detailed() -> None:
    assert NetworkQualityStats.from_dict({"level": 3}) == NetworkQualityStats(3)
    moderate = NetworkQualityStats.from_dict(
        {"level": 2, "audio": {"send": 4, "recv": 5}, "video": {"send": 2, "recv": 3}}
    )
    assert isinstance(moderate.audio, NetworkQualityAudioStats)
    assert isinstance(moderate.video, NetworkQualityVideoStats)
    assert (moderate.audio.send, moderate.audio.recv, moderate.audio.send_stats) == (4, 5, None)
    detailed = NetworkQualityStats.from_dict(
        {
            "level": 4,
            "audio": {
                "send": 4,
                "recv": 4,
                "sendStats": {
                    "bandwidth": {"actual": 32000, "available": 1e6, "level": 5},
                    "fractionLost": {"fractionLost": 0.01, "level": 4},
                    "latency": {"jitter": 0.002, "rtt": 0.05, "level": 5},
                },
                "recvStats": {"fractionLost": {"fractionLost": 0, "level": 5}},
            },
        }
    )
    audio = detailed.audio
    assert audio is not None and detailed.video is None
    assert isinstance(audio.send_stats, NetworkQualitySendStats)
    assert isinstance(audio.recv_stats, NetworkQualityRecvStats)
    assert audio.send_stats.bandwidth == NetworkQualityBandwidthStats(32000, 1e6, 5)
    assert audio.send_stats.fraction_lost == NetworkQualityFractionLostStats(0.01, 4)
    assert audio.send_stats.latency == NetworkQualityLatencyStats(0.002, 0.05, 5)
    assert audio.recv_stats.bandwidth is None and audio.recv_stats.latency is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "network_quality: expected an object"),
        ({}, "network_quality.level: required"),
        ({"level": 6}, "network_quality.level: expected a level 0-5, got 6"),
        ({"level": 2.5}, "network_quality.level: expected a level 0-5"),
        ({"level": "3"}, "network_quality.level: expected a number"),
        ({"level": 1, "audio": 5}, "network_quality.audio: expected an object"),
        ({"level": 1, "video": {"send": -1}}, "network_quality.video.send: expected a level"),
        (
            {"level": 1, "audio": {"sendStats": {"latency": {"rtt": "slow"}}}},
            "network_quality.audio.sendStats.latency.rtt: expected a number",
        ),
        (
            {"level": 1, "audio": {"recvStats": {"bandwidth": []}}},
            "network_quality.audio.recvStats.bandwidth: expected an object",
        ),
    ],
)
def test_invalid_stats_name_the_path(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        NetworkQualityStats.from_dict(data)
    assert message in str(info.value)
