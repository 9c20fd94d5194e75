"""The client-side object model: Room, participants, tracks and publications.

These objects hold state and fire events; the network layer (rtcroom's signaling client)
creates and drives them through the package-internal methods documented in each module:
:mod:`~rtcroom.client.room`, :mod:`~rtcroom.client.participant`,
:mod:`~rtcroom.client.localtrack`, :mod:`~rtcroom.client.remotetrack`, and they call it back
through :class:`~rtcroom.client.roomsignaling.RoomSignaling`.
"""

from rtcroom.client.create import (
    create_local_audio_track,
    create_local_tracks,
    create_local_video_track,
)
from rtcroom.client.localtrack import (
    LocalAudioTrack,
    LocalDataTrack,
    LocalMediaTrack,
    LocalTrack,
    LocalVideoTrack,
)
from rtcroom.client.participant import LocalParticipant, Participant, RemoteParticipant
from rtcroom.client.publication import (
    LocalAudioTrackPublication,
    LocalDataTrackPublication,
    LocalTrackPublication,
    LocalVideoTrackPublication,
    RemoteAudioTrackPublication,
    RemoteDataTrackPublication,
    RemoteTrackPublication,
    RemoteVideoTrackPublication,
    TrackPublication,
)
from rtcroom.client.remotetrack import (
    RemoteAudioTrack,
    RemoteDataTrack,
    RemoteMediaTrack,
    RemoteTrack,
    RemoteVideoTrack,
)
from rtcroom.client.room import Room
from rtcroom.client.roomsignaling import RoomSignaling
from rtcroom.client.stats import (
    LocalAudioTrackStats,
    LocalTrackStats,
    LocalVideoTrackStats,
    RemoteAudioTrackStats,
    RemoteTrackStats,
    RemoteVideoTrackStats,
    StatsReport,
    TrackStats,
)
from rtcroom.signaling.networkquality import (
    NetworkQualityAudioStats,
    NetworkQualityBandwidthStats,
    NetworkQualityFractionLostStats,
    NetworkQualityLatencyStats,
    NetworkQualityMediaStats,
    NetworkQualityRecvStats,
    NetworkQualitySendOrRecvStats,
    NetworkQualitySendStats,
    NetworkQualityStats,
    NetworkQualityVideoStats,
)

__all__ = [
    "LocalAudioTrack",
    "LocalAudioTrackPublication",
    "LocalAudioTrackStats",
    "LocalDataTrack",
    "LocalDataTrackPublication",
    "LocalMediaTrack",
    "LocalParticipant",
    "LocalTrack",
    "LocalTrackPublication",
    "LocalTrackStats",
    "LocalVideoTrack",
    "LocalVideoTrackPublication",
    "LocalVideoTrackStats",
    "NetworkQualityAudioStats",
    "NetworkQualityBandwidthStats",
    "NetworkQualityFractionLostStats",
    "NetworkQualityLatencyStats",
    "NetworkQualityMediaStats",
    "NetworkQualityRecvStats",
    "NetworkQualitySendOrRecvStats",
    "NetworkQualitySendStats",
    "NetworkQualityStats",
    "NetworkQualityVideoStats",
    "Participant",
    "RemoteAudioTrack",
    "RemoteAudioTrackPublication",
    "RemoteAudioTrackStats",
    "RemoteDataTrack",
    "RemoteDataTrackPublication",
    "RemoteMediaTrack",
    "RemoteParticipant",
    "RemoteTrack",
    "RemoteTrackPublication",
    "RemoteTrackStats",
    "RemoteVideoTrack",
    "RemoteVideoTrackPublication",
    "RemoteVideoTrackStats",
    "Room",
    "RoomSignaling",
    "StatsReport",
    "TrackPublication",
    "TrackStats",
    "create_local_audio_track",
    "create_local_tracks",
    "create_local_video_track",
]
