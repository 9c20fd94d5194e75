"""Option classes: defaults, camelCase input, normalization, and one test per validation rule."""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Any

import pytest
from aiortc import RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from rtcroom.constants import (
    AudioCodec,
    BandwidthProfileMode,
    LogLevel,
    NetworkQualityVerbosity,
    TrackPriority,
    TrackSwitchOffMode,
    VideoCodec,
)
from rtcroom.options import (
    KEEP,
    AudioCodecSettings,
    BandwidthProfileOptions,
    ConnectOptions,
    CreateLocalTrackOptions,
    CreateLocalTracksOptions,
    EncodingParameters,
    LocalDataTrackOptions,
    LocalTrackOptions,
    LocalTrackPublishOptions,
    LogLevels,
    NetworkQualityConfiguration,
    OpusCodecSettings,
    VideoBandwidthProfileOptions,
    VideoCodecSettings,
    VideoRenderDimensions,
    VideoTrackDimensions,
    VP8CodecSettings,
)

# A ConnectOptions object as a twilio-video.js application would write it.
BROWSER_OPTIONS = """
{
  "name": "standup",
  "audio": true,
  "video": {"name": "camera", "width": 640, "height": {"ideal": 480}, "frameRate": 24},
  "automaticSubscription": false,
  "bandwidthProfile": {
    "video": {
      "mode": "collaboration",
      "dominantSpeakerPriority": "high",
      "maxSubscriptionBitrate": 2500000,
      "maxTracks": 3,
      "trackSwitchOffMode": "detected",
      "renderDimensions": {"high": {"width": 1920, "height": 1080}}
    }
  },
  "dominantSpeaker": true,
  "enableDscp": true,
  "iceServers": [{"urls": ["stun:127.0.0.1:3478"]},
                 {"urls": "turn:127.0.0.1", "username": "u", "credential": "p"}],
  "iceTransportPolicy": "relay",
  "insights": false,
  "maxAudioBitrate": 16000,
  "maxVideoBitrate": 0,
  "networkQuality": {"local": 1, "remote": 2},
  "region": "de1",
  "preferredAudioCodecs": ["isac", {"codec": "opus", "dtx": false}],
  "preferredVideoCodecs": [{"codec": "VP8", "simulcast": true}, "H264"],
  "logLevel": {"default": "info", "signaling": "debug"}
}
"""


def test_browser_options_are_read_and_normalized() -> None:
    o = ConnectOptions.from_dict(json.loads(BROWSER_OPTIONS))
    assert o.name == "standup"
    assert o.audio is True
    assert o.video == CreateLocalTrackOptions(name="camera", width=640, height=480, frame_rate=24)
    assert o.automatic_subscription is False
    assert o.bandwidth_profile is not None
    video = o.bandwidth_profile.video
    assert video is not None
    assert video.mode is BandwidthProfileMode.COLLABORATION
    assert video.dominant_speaker_priority is TrackPriority.HIGH
    assert (video.max_subscription_bitrate, video.max_tracks) == (2_500_000, 3)
    assert video.track_switch_off_mode is TrackSwitchOffMode.DETECTED
    assert video.render_dimensions is not None
    assert video.render_dimensions.high == VideoTrackDimensions(1920, 1080)
    assert video.render_dimensions.standard == VideoTrackDimensions(640, 480)
    assert o.dominant_speaker and o.enable_dscp
    assert o.ice_servers == (
        RTCIceServer(urls=["stun:127.0.0.1:3478"]),
        RTCIceServer(urls="turn:127.0.0.1", username="u", credential="p"),
    )
    assert o.ice_transport_policy is RTCIceTransportPolicy.RELAY
    assert (o.max_audio_bitrate, o.max_video_bitrate) == (16000, 0)
    assert o.network_quality == NetworkQualityConfiguration(
        NetworkQualityVerbosity.MINIMAL, NetworkQualityVerbosity.MODERATE
    )
    assert o.region == "de1"
    assert o.preferred_audio_codecs == (
        AudioCodecSettings(AudioCodec.ISAC),
        OpusCodecSettings(dtx=False),
    )
    assert o.preferred_video_codecs == (
        VP8CodecSettings(simulcast=True),
        VideoCodecSettings("H264"),
    )
    assert o.log_level == LogLevels(
        default=LogLevel.INFO, signaling=LogLevel.DEBUG, media=LogLevel.WARN, webrtc=LogLevel.WARN
    )


def test_snake_case_dict_and_keywords_give_the_same_object() -> None:
    data = {"name": "r", "dominant_speaker": True, "network_quality": True}
    assert ConnectOptions.from_dict(data) == ConnectOptions(**data)


def test_connect_defaults() -> None:
    o = ConnectOptions()
    assert o.audio is False and o.video is False and o.tracks is None
    assert o.automatic_subscription is True
    assert o.bandwidth_profile is None and o.network_quality is None
    assert o.dominant_speaker is False and o.enable_dscp is False and o.insights is False
    assert o.ice_transport_policy is RTCIceTransportPolicy.ALL and o.ice_servers is None
    assert o.region == "gll"
    assert o.log_level is None
    assert o.preferred_audio_codecs == () and o.preferred_video_codecs == ()


def test_render_dimension_defaults() -> None:
    d = VideoRenderDimensions()
    assert (d.high.width, d.high.height) == (1280, 720)
    assert (d.standard.width, d.standard.height) == (640, 480)
    assert (d.low.width, d.low.height) == (176, 144)
    # Zero or negative sizes are allowed: they ask for the lowest resolution.
    assert VideoRenderDimensions.from_dict({"low": {"width": 0, "height": -1}}).low.height == -1


def test_video_bandwidth_profile_defaults() -> None:
    v = VideoBandwidthProfileOptions()
    assert v.mode is BandwidthProfileMode.GRID
    assert v.track_switch_off_mode is TrackSwitchOffMode.PREDICTED
    assert v.dominant_speaker_priority is TrackPriority.STANDARD
    assert v.max_tracks is None and v.max_subscription_bitrate is None
    assert v.render_dimensions is None
    assert v.client_track_switch_off_control is None and v.content_preferences_mode is None
    assert BandwidthProfileOptions().video is None


def test_network_quality_true_false() -> None:
    nq = ConnectOptions(network_quality=True).network_quality
    assert nq == NetworkQualityConfiguration(
        NetworkQualityVerbosity.MINIMAL, NetworkQualityVerbosity.NONE
    )
    assert ConnectOptions(network_quality=False).network_quality is None
    assert NetworkQualityConfiguration.from_dict({"remote": 3}).local == 1


def test_log_level_string_applies_to_every_component() -> None:
    levels = ConnectOptions(log_level="debug").log_level
    assert levels is not None
    assert {levels.default, levels.media, levels.signaling, levels.webrtc} == {LogLevel.DEBUG}


def test_plain_strings_become_enum_members() -> None:
    o = LocalTrackPublishOptions(priority="high")  # type: ignore[arg-type]
    assert o.priority is TrackPriority.HIGH and o.priority == "high"
    assert str(o.priority) == "high"


def test_dscp_tagging_is_a_deprecated_alias() -> None:
    with pytest.warns(DeprecationWarning, match="dscp_tagging"):
        o = ConnectOptions(dscp_tagging=True)
    assert o.enable_dscp is True and o.dscp_tagging is None
    with pytest.warns(DeprecationWarning):
        assert ConnectOptions.from_dict({"dscpTagging": True}).enable_dscp is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ConnectOptions(enable_dscp=True)


def test_no_op_options_are_accepted() -> None:
    assert ConnectOptions.from_dict({"insights": True}).insights is True
    t = CreateLocalTrackOptions.from_dict(
        {"workaroundWebKitBug180748": True, "deviceId": "abc", "echoCancellation": False}
    )
    assert t.workaround_webkit_bug_180748 is True
    assert t.constraints == {"deviceId": "abc", "echoCancellation": False}


def test_encoding_parameters_left_out_keeps_none_or_zero_removes() -> None:
    assert EncodingParameters() == EncodingParameters(KEEP, KEEP)
    e = EncodingParameters.from_dict({"maxAudioBitrate": None, "maxVideoBitrate": 500_000})
    assert (e.max_audio_bitrate, e.max_video_bitrate) == (0, 500_000)
    assert EncodingParameters(max_video_bitrate=None).max_video_bitrate == 0
    assert EncodingParameters.from_dict({"maxVideoBitrate": 1}).max_audio_bitrate is KEEP


def test_data_track_options() -> None:
    o = LocalDataTrackOptions.from_dict({"maxRetransmits": 3, "ordered": False, "name": "chat"})
    assert (o.max_retransmits, o.ordered, o.name, o.max_packet_life_time) == (
        3,
        False,
        "chat",
        None,
    )


def test_codec_settings_accept_name_key() -> None:
    assert AudioCodecSettings.from_dict({"name": "PCMU"}).codec is AudioCodec.PCMU
    assert VP8CodecSettings.from_dict({"name": "VP8", "simulcast": True}).simulcast is True


def test_create_local_tracks_options() -> None:
    o = CreateLocalTracksOptions.from_dict({"audio": {"sampleRate": 16000}, "video": False})
    assert o.audio == CreateLocalTrackOptions(sample_rate=16000) and o.video is False
    assert LocalTrackOptions.from_dict({"name": "t", "logLevel": "off"}).log_level == LogLevels.of(
        "off"
    )


def test_replace_checks_again() -> None:
    o = ConnectOptions(name="a")
    with pytest.raises(TypeError, match="region"):
        dataclasses.replace(o, region=None)  # type: ignore[arg-type]


# --- every rule, with the path and the allowed values in the message ----------------------------

INVALID: list[tuple[type[Any], Any, type[Exception], str]] = [
    # enums
    (
        ConnectOptions,
        {"bandwidth_profile": {"video": {"mode": "gird"}}},
        ValueError,
        "bandwidth_profile.video.mode: 'gird' is not one of grid, collaboration, presentation",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"trackSwitchOffMode": "never"}}},
        ValueError,
        "bandwidth_profile.video.track_switch_off_mode: 'never' is not one of detected, predicted, "
        "disabled",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"dominantSpeakerPriority": "urgent"}}},
        ValueError,
        "bandwidth_profile.video.dominant_speaker_priority: 'urgent' is not one of low, standard, "
        "high",
    ),
    (
        ConnectOptions,
        {"logLevel": "verbose"},
        ValueError,
        "log_level: 'verbose' is not one of debug",
    ),
    (
        ConnectOptions,
        {"logLevel": {"media": "loud"}},
        ValueError,
        "log_level.media: 'loud' is not one of",
    ),
    (ConnectOptions, {"logLevel": {"network": "info"}}, ValueError, "log_level.network: unknown"),
    (
        ConnectOptions,
        {"networkQuality": {"local": 4}},
        ValueError,
        "network_quality.local: 4 is not one of 0, 1, 2, 3",
    ),
    (ConnectOptions, {"networkQuality": {"remote": "1"}}, TypeError, "network_quality.remote"),
    (ConnectOptions, {"networkQuality": "yes"}, TypeError, "network_quality: expected an object"),
    (
        ConnectOptions,
        {"preferredAudioCodecs": ["opus", "mp3"]},
        ValueError,
        "preferred_audio_codecs[1]: 'mp3' is not one of isac, opus, PCMA, PCMU",
    ),
    (
        ConnectOptions,
        {"preferredVideoCodecs": [{"codec": "AV1"}]},
        ValueError,
        "preferred_video_codecs[0].codec: 'AV1' is not one of H264, VP8, VP9",
    ),
    (
        ConnectOptions,
        {"preferredVideoCodecs": "VP8"},
        TypeError,
        "preferred_video_codecs: expected a list",
    ),
    (
        ConnectOptions,
        {"preferredAudioCodecs": [{"codec": "opus", "dtx": "no"}]},
        TypeError,
        "preferred_audio_codecs[0].dtx: expected true or false",
    ),
    (
        ConnectOptions,
        {"preferredVideoCodecs": [{"codec": "VP8", "simulcast": 1}]},
        TypeError,
        "preferred_video_codecs[0].simulcast",
    ),
    (OpusCodecSettings, {"codec": "PCMU"}, ValueError, "codec: OpusCodecSettings is for opus only"),
    (VP8CodecSettings, {"codec": "H264"}, ValueError, "codec: VP8CodecSettings is for VP8 only"),
    (
        ConnectOptions,
        {"iceTransportPolicy": "some"},
        ValueError,
        "ice_transport_policy: 'some' is not one of all, relay",
    ),
    # booleans
    (ConnectOptions, {"automaticSubscription": "false"}, TypeError, "automatic_subscription"),
    (ConnectOptions, {"dominantSpeaker": 1}, TypeError, "dominant_speaker: expected true or false"),
    (ConnectOptions, {"enableDscp": None}, TypeError, "enable_dscp"),
    (ConnectOptions, {"insights": "off"}, TypeError, "insights"),
    (ConnectOptions, {"audio": "yes"}, TypeError, "audio: expected an object"),
    (ConnectOptions, {"video": {"frameRate": 0}}, ValueError, "video.frame_rate: 0 is less than 1"),
    (ConnectOptions, {"video": {"width": {"best": 3}}}, ValueError, "video.width: expected"),
    (ConnectOptions, {"video": {"zoom": 2}}, ValueError, "video.zoom: unknown option"),
    (LocalDataTrackOptions, {"ordered": "yes"}, TypeError, "ordered"),
    # numbers
    (ConnectOptions, {"maxAudioBitrate": -1}, ValueError, "max_audio_bitrate: -1 is less than 0"),
    (
        ConnectOptions,
        {"maxVideoBitrate": "1M"},
        TypeError,
        "max_video_bitrate: expected an integer",
    ),
    (ConnectOptions, {"maxVideoBitrate": 1.5}, TypeError, "max_video_bitrate"),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"maxSubscriptionBitrate": -5}}},
        ValueError,
        "bandwidth_profile.video.max_subscription_bitrate: -5 is less than 0",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"maxTracks": True}}},
        TypeError,
        "bandwidth_profile.video.max_tracks",
    ),
    (
        ConnectOptions,
        {
            "bandwidthProfile": {
                "video": {"renderDimensions": {"low": {"width": "176", "height": 1}}}
            }
        },
        TypeError,
        "bandwidth_profile.video.render_dimensions.low.width: expected an integer",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"renderDimensions": {"huge": {}}}}},
        ValueError,
        "bandwidth_profile.video.render_dimensions.huge: unknown option",
    ),
    (
        LocalDataTrackOptions,
        {"maxRetransmits": -1},
        ValueError,
        "max_retransmits: -1 is less than 0",
    ),
    (
        EncodingParameters,
        {"maxAudioBitrate": -2},
        ValueError,
        "max_audio_bitrate: -2 is less than 0",
    ),
    # strings and structure
    (ConnectOptions, {"name": 5}, TypeError, "name: expected a string"),
    (ConnectOptions, {"region": None}, TypeError, "region: expected a string"),
    (ConnectOptions, {"roomName": "x"}, ValueError, "roomName: unknown option; allowed: audio"),
    (ConnectOptions, {"bandwidthProfile": []}, TypeError, "bandwidth_profile: expected an object"),
    (ConnectOptions, {"bandwidthProfile": {"audio": {}}}, ValueError, "bandwidth_profile.audio"),
    (
        ConnectOptions,
        {"iceServers": [{"url": "stun:x"}]},
        ValueError,
        "ice_servers[0].url: unknown",
    ),
    (ConnectOptions, {"iceServers": [{"urls": []}]}, ValueError, "ice_servers[0].urls"),
    (ConnectOptions, {"iceServers": ["stun:x"]}, TypeError, "ice_servers[0]: expected"),
    (
        ConnectOptions,
        {"iceServers": [{"urls": "turn:x", "credential": 5}]},
        TypeError,
        "ice_servers[0].credential: expected a string",
    ),
    (ConnectOptions, {"eventListener": 5}, TypeError, "event_listener: expected a callable"),
    (ConnectOptions, {"tracks": ["camera"]}, TypeError, "tracks[0]: expected a LocalTrack"),
    (LocalTrackOptions, {"name": ["a"]}, TypeError, "name: expected a string"),
    (LocalTrackPublishOptions, {"priority": "top"}, ValueError, "priority: 'top' is not one of"),
    (ConnectOptions, {"dscpTagging": "yes"}, TypeError, "dscp_tagging: expected true or false"),
    (
        ConnectOptions,
        {"audio": {"sampleRate": -8000}},
        ValueError,
        "audio.sample_rate: -8000 is less than 1",
    ),
    (
        ConnectOptions,
        {"video": {"workaroundWebKitBug180748": "yes"}},
        TypeError,
        "video.workaround_webkit_bug_180748: expected true or false",
    ),
    (
        LocalDataTrackOptions,
        {"maxPacketLifeTime": -1},
        ValueError,
        "max_packet_life_time: -1 is less than 0",
    ),
    (CreateLocalTracksOptions, {"logLevel": 3}, TypeError, "log_level: expected an object"),
    (VideoTrackDimensions, {"width": 5, "height": None}, TypeError, "height: expected an integer"),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"renderDimensions": {"high": {"width": 5}}}}},
        TypeError,
        "bandwidth_profile.video.render_dimensions.high.height: required",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"clientTrackSwitchOffControl": "visible"}}},
        ValueError,
        "bandwidth_profile.video.client_track_switch_off_control: 'visible' is not one of auto, "
        "manual",
    ),
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"contentPreferencesMode": True}}},
        TypeError,
        "bandwidth_profile.video.content_preferences_mode: expected a string",
    ),
    # the cross-field rules
    (
        ConnectOptions,
        {"bandwidthProfile": {"video": {"maxTracks": 2, "clientTrackSwitchOffControl": "auto"}}},
        TypeError,
        "bandwidth_profile.video.max_tracks: deprecated, and not allowed with "
        "client_track_switch_off_control",
    ),
    (
        ConnectOptions,
        {
            "bandwidthProfile": {
                "video": {"renderDimensions": {}, "contentPreferencesMode": "manual"}
            }
        },
        TypeError,
        "bandwidth_profile.video.render_dimensions: deprecated, and not allowed with "
        "content_preferences_mode",
    ),
    (
        LocalDataTrackOptions,
        {"maxPacketLifeTime": 100, "maxRetransmits": 2},
        ValueError,
        "max_packet_life_time, max_retransmits: set at most one of the two",
    ),
]


@pytest.mark.parametrize(("cls", "data", "error", "message"), INVALID)
def test_invalid_values_name_path_and_allowed(
    cls: type[Any], data: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        cls.from_dict(data)
    assert message in str(info.value)


def test_from_dict_refuses_non_objects() -> None:
    with pytest.raises(TypeError, match="ConnectOptions: expected an object"):
        ConnectOptions.from_dict(["name"])


def test_direct_construction_checks_too() -> None:
    with pytest.raises(ValueError, match="mode: 'gird'"):
        VideoBandwidthProfileOptions(mode="gird")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_packet_life_time, max_retransmits"):
        LocalDataTrackOptions(max_packet_life_time=1, max_retransmits=1)


def test_nested_path_survives_a_prefix() -> None:
    with pytest.raises(ValueError, match=r"^opts\.bandwidth_profile\.video\.mode: "):
        ConnectOptions.from_dict({"bandwidthProfile": {"video": {"mode": "x"}}}, "opts")


def test_video_codec_enum_values() -> None:
    assert [c.value for c in VideoCodec] == ["H264", "VP8", "VP9"]


ALL_OPTION_CLASSES = [
    AudioCodecSettings,
    BandwidthProfileOptions,
    ConnectOptions,
    CreateLocalTrackOptions,
    CreateLocalTracksOptions,
    EncodingParameters,
    LocalDataTrackOptions,
    LocalTrackOptions,
    LocalTrackPublishOptions,
    LogLevels,
    NetworkQualityConfiguration,
    OpusCodecSettings,
    VP8CodecSettings,
    VideoBandwidthProfileOptions,
    VideoCodecSettings,
    VideoRenderDimensions,
]


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@pytest.mark.parametrize("cls", ALL_OPTION_CLASSES, ids=lambda c: c.__name__)
def test_every_field_is_reachable_by_its_camel_case_name(cls: type[Any]) -> None:
    defaults = cls()
    for field in dataclasses.fields(cls):
        if field.name in ("dscp_tagging", "constraints"):
            continue  # a deprecated alias (warns) and a bag of browser constraints
        value = getattr(defaults, field.name)
        if value is None or value is KEEP or isinstance(value, tuple):
            continue  # nothing to carry over; lists are covered by BROWSER_OPTIONS
        key = next((k for k, v in cls._aliases.items() if v == field.name), camel(field.name))
        assert cls.from_dict({key: value}) == defaults, (cls.__name__, key)


def test_every_option_class_is_exported() -> None:
    import rtcroom

    for cls in [*ALL_OPTION_CLASSES, VideoTrackDimensions]:
        assert getattr(rtcroom, cls.__name__) is cls
