"""Real aiortc peer connections on 127.0.0.1, negotiated in-process (no signaling server), and
synthetic sources whose content a receiver can check after decoding: a sine tone and a
two-level pattern with a moving bar."""

from __future__ import annotations

import asyncio
import fractions
import math
from contextlib import AbstractContextManager

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamTrack, VideoStreamTrack
from rtcroom.aiortc_ext.ice import use_host_addresses

SAMPLE_RATE = 48000
WIDTH, HEIGHT = 320, 240


def loopback_only() -> AbstractContextManager[None]:
    """The project's tests use loopback only (aioice on its own gathers every address but it)."""
    return use_host_addresses(["127.0.0.1"])


async def negotiate(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)


async def wait_connected(*pcs: RTCPeerConnection, timeout: float = 20) -> None:
    async def one(pc: RTCPeerConnection) -> None:
        while pc.connectionState != "connected":
            if pc.connectionState in ("failed", "closed"):
                raise ConnectionError(f"peer connection {pc.connectionState}")
            await asyncio.sleep(0.05)

    await asyncio.wait_for(asyncio.gather(*(one(pc) for pc in pcs)), timeout)


class ToneTrack(MediaStreamTrack):
    """A sine tone at `frequency` Hz, 20 ms mono s16 frames paced in real time."""

    kind = "audio"

    def __init__(self, frequency: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.frequency = frequency
        self.amplitude = amplitude
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        n = int(AUDIO_PTIME * SAMPLE_RATE)
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        else:
            await asyncio.sleep(max(0.0, self._start + self._samples / SAMPLE_RATE - loop.time()))
        t = (self._samples + np.arange(n)) / SAMPLE_RATE
        pcm = (self.amplitude * 32767 * np.sin(2 * math.pi * self.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += n
        return frame


def pattern(index: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Left half bright, right half dark, and a mid-grey bar moving across the bottom quarter:
    coarse enough to survive a low-bitrate encode, and different from frame to frame."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = 230
    img[:, width // 2 :] = 20
    x = (index * 4) % (width - 16)
    img[3 * height // 4 :, x : x + 16] = 128
    return img


class PatternTrack(VideoStreamTrack):
    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.width, self.height = width, height
        self.frames = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(pattern(self.frames, self.width, self.height), "rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.frames += 1
        return frame


def dominant_frequency(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def looks_like_pattern(frame: av.VideoFrame) -> bool:
    """The decoded frame shows the pattern's two halves (the moving bar aside)."""
    gray = frame.to_ndarray(format="gray")
    h, w = gray.shape
    top = gray[: h // 2]
    return bool(top[:, : w // 2 - 8].mean() > 180 and top[:, w // 2 + 8 :].mean() < 70)


class NoiseTrack(VideoStreamTrack):
    """Random pixels: incompressible, so a rate-controlled encoder spends its whole budget."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._rng = np.random.default_rng(7)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = self._rng.integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, "rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame
