from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

OFF: int
UNKNOWN: int
HYSTERESIS_DIVISOR: int
REASONS: tuple[str, ...]

class Plan:
    # subscriptions: (mode, track_switch_off_mode, max_subscription_bitrate | None, max_tracks,
    # dominant_speaker_priority, (low w, low h, standard w, standard h, high w, high h),
    # [(track_id, priority, dominant_speaker, switched_off, [(bitrate, width, height), ...]), ...])
    def __init__(self, subscriptions: Sequence[Sequence[Any]], name_subscribers: bool) -> None: ...
    @property
    def subscriber_count(self) -> int: ...
    @property
    def track_count(self) -> int: ...
    @property
    def first_tracks(self) -> npt.NDArray[np.int64]: ...
    def allocate(
        self,
        available_bitrate: npt.ArrayLike,
        congestion: npt.ArrayLike,
        previous: npt.ArrayLike | None,
    ) -> tuple[
        npt.NDArray[np.int32],
        npt.NDArray[np.int64],
        npt.NDArray[np.uint8],
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
    ]: ...
