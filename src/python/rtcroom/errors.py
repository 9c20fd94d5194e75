"""The Twilio Video error-code table, as exceptions.

Every error rtcroom reports to a user, and every error its server sends on the wire, is one of
these: an exception class per Twilio Video error code, named as twilio-video.js names it, with
the same default message. :func:`from_code` turns a code received from the wire back into the
right class, so ``except rtcroom.errors.RoomMaxParticipantsExceededError`` works on either side.

Code ranges: 20101-20107 access token, 53000-53006 signaling, 53100-53125 room,
53200-53205 participant, 53300-53305 track, 53400-53407 media, 53500-53501 configuration.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["ERRORS_BY_CODE", "TwilioError", "from_code"]


class TwilioError(Exception):
    """A Twilio Video error: a numeric ``code`` and a human-readable ``message``.

    Subclasses fix ``code`` and a default ``message``; an explicit message (for instance the
    detail a server sent) replaces the default but keeps the code.
    """

    code: int = 0
    message: str
    default_message: ClassVar[str] = "Unknown error"

    def __init__(self, code: int = 0, message: str | None = None) -> None:
        self.code = code
        self.message = message if message else type(self).default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """The ``{code, message}`` object the signaling protocol carries."""
        return {"code": self.code, "message": self.message}


class _CodedError(TwilioError):
    """A TwilioError whose code is fixed by its class; the constructor takes only a message."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(type(self).code, message)


# --- 201xx: access tokens -----------------------------------------------------------------------


class AccessTokenInvalidError(_CodedError):
    """The access token could not be parsed or is otherwise unusable."""

    code = 20101
    default_message = "Invalid Access Token"


class AccessTokenHeaderInvalidError(_CodedError):
    """The token's JOSE header is wrong (algorithm, type or content type)."""

    code = 20102
    default_message = "Invalid Access Token header"


class AccessTokenIssuerInvalidError(_CodedError):
    """The token's issuer (API key SID) or subject (account SID) is missing or unknown."""

    code = 20103
    default_message = "Invalid Access Token issuer/subject"


class AccessTokenExpiredError(_CodedError):
    """The token is past its ``exp``, or ``exp`` is missing or malformed."""

    code = 20104
    default_message = "Access Token expired or expiration date invalid"


class AccessTokenNotYetValidError(_CodedError):
    """The token's ``nbf`` lies in the future."""

    code = 20105
    default_message = "Access Token not yet valid"


class AccessTokenGrantsInvalidError(_CodedError):
    """The token's grants do not allow this: no identity, no video grant, or another room."""

    code = 20106
    default_message = "Invalid Access Token grants"


class AccessTokenSignatureInvalidError(_CodedError):
    """The token's signature does not match the API key secret."""

    code = 20107
    default_message = "Invalid Access Token signature"


# --- 530xx: signaling ---------------------------------------------------------------------------


class SignalingConnectionError(_CodedError):
    """The signaling connection failed, for a reason no narrower code covers."""

    code = 53000
    default_message = "Signaling connection error"


class SignalingConnectionDisconnectedError(_CodedError):
    """The signaling connection closed when it was not supposed to."""

    code = 53001
    default_message = "Signaling connection disconnected"


class SignalingConnectionTimeoutError(_CodedError):
    """Heartbeats stopped arriving, or the signaling session could not be resumed in time."""

    code = 53002
    default_message = "Signaling connection timed out"


class SignalingIncomingMessageInvalidError(_CodedError):
    """The client got a signaling message it cannot interpret."""

    code = 53003
    default_message = "Client received an invalid signaling message"


class SignalingOutgoingMessageInvalidError(_CodedError):
    """The server got a signaling message from the client that it cannot interpret."""

    code = 53004
    default_message = "Client sent an invalid signaling message"


class SignalingServerBusyError(_CodedError):
    """The server refuses new connections for now (a ``busy`` frame with no retry)."""

    code = 53006
    default_message = "Video server is busy"


# --- 531xx: rooms -------------------------------------------------------------------------------


class RoomNameInvalidError(_CodedError):
    """The room name is unusable, for a reason no narrower code covers."""

    code = 53100
    default_message = "Room name is invalid"


class RoomNameTooLongError(_CodedError):
    """The room name exceeds the length limit."""

    code = 53101
    default_message = "Room name is too long"


class RoomNameCharsInvalidError(_CodedError):
    """The room name has characters that are not allowed."""

    code = 53102
    default_message = "Room name contains invalid characters"


class RoomCreateFailedError(_CodedError):
    """The server could not create the room."""

    code = 53103
    default_message = "Unable to create Room"


class RoomConnectFailedError(_CodedError):
    """Joining the room failed, for a reason no narrower code covers."""

    code = 53104
    default_message = "Unable to connect to Room"


class RoomMaxParticipantsExceededError(_CodedError):
    """The room is full."""

    code = 53105
    default_message = "Room contains too many Participants"


class RoomNotFoundError(_CodedError):
    """No such room."""

    code = 53106
    default_message = "Room not found"


class RoomMaxParticipantsOutOfRangeError(_CodedError):
    """REST API: MaxParticipants is outside the allowed range."""

    code = 53107
    default_message = "MaxParticipants is out of range"


class RoomTypeInvalidError(_CodedError):
    """REST API: the room type is not one the server knows."""

    code = 53108
    default_message = "RoomType is not valid"


class RoomTimeoutOutOfRangeError(_CodedError):
    """REST API: the empty-room timeout is outside the allowed range."""

    code = 53109
    default_message = "Timeout is out of range"


class RoomStatusCallbackMethodInvalidError(_CodedError):
    """REST API: StatusCallbackMethod is not an allowed HTTP method."""

    code = 53110
    default_message = "StatusCallbackMethod is invalid"


class RoomStatusCallbackInvalidError(_CodedError):
    """REST API: StatusCallback is not a usable URL."""

    code = 53111
    default_message = "StatusCallback is invalid"


class RoomStatusInvalidError(_CodedError):
    """REST API: the requested status change is not allowed, or the room is not in progress."""

    code = 53112
    default_message = "Status is invalid"


class RoomRoomExistsError(_CodedError):
    """REST API: a room with this name is already in progress."""

    code = 53113
    default_message = "Room exists"


class RoomInvalidParametersError(_CodedError):
    """REST API: a creation parameter does not fit the room type."""

    code = 53114
    default_message = "Room creation parameter(s) incompatible with the Room type"


class RoomMediaRegionInvalidError(_CodedError):
    """REST API: MediaRegion is not a known region."""

    code = 53115
    default_message = "MediaRegion is invalid"


class RoomMediaRegionUnavailableError(_CodedError):
    """REST API: the MediaRegion is known but has no media server available."""

    code = 53116
    default_message = "There are no media servers available in the MediaRegion"


class RoomSubscriptionOperationNotSupportedError(_CodedError):
    """This kind of room does not support the requested subscription change."""

    code = 53117
    default_message = "The subscription operation requested is not supported for the Room type"


class RoomCompletedError(_CodedError):
    """The room was ended (for instance through the REST API)."""

    code = 53118
    default_message = "Room completed"


class RoomAudioOnlyFlagNotSupportedError(_CodedError):
    """The AudioOnly flag was set on a room that is not a group room."""

    code = 53124
    default_message = "The AudioOnly flag is not supported for the Room type"


class RoomTrackKindNotSupportedError(_CodedError):
    """The room does not accept tracks of this kind (e.g. video in an audio-only room)."""

    code = 53125
    default_message = "The track kind is not supported by the Room"


# --- 532xx: participants ------------------------------------------------------------------------


class ParticipantIdentityInvalidError(_CodedError):
    """The identity is unusable, for a reason no narrower code covers."""

    code = 53200
    default_message = "Participant identity is invalid"


class ParticipantIdentityTooLongError(_CodedError):
    """The identity exceeds the length limit."""

    code = 53201
    default_message = "Participant identity is too long"


class ParticipantIdentityCharsInvalidError(_CodedError):
    """The identity has characters that are not allowed."""

    code = 53202
    default_message = "Participant identity contains invalid characters"


class ParticipantMaxTracksExceededError(_CodedError):
    """Publishing one more track would exceed the room's limit on published tracks."""

    code = 53203
    default_message = (
        "The maximum number of published tracks allowed in the Room at the same time has been "
        "reached"
    )


class ParticipantNotFoundError(_CodedError):
    """No such participant."""

    code = 53204
    default_message = "Participant not found"


class ParticipantDuplicateIdentityError(_CodedError):
    """Sent to a participant whose identity was just taken by a newer connection."""

    code = 53205
    default_message = "Participant disconnected because of duplicate identity"


# --- 533xx: tracks ------------------------------------------------------------------------------


class TrackInvalidError(_CodedError):
    """The track is unusable, for a reason no narrower code covers."""

    code = 53300
    default_message = "Track is invalid"


class TrackNameInvalidError(_CodedError):
    """The track name is unusable, for a reason no narrower code covers."""

    code = 53301
    default_message = "Track name is invalid"


class TrackNameTooLongError(_CodedError):
    """The track name exceeds the length limit."""

    code = 53302
    default_message = "Track name is too long"


class TrackNameCharsInvalidError(_CodedError):
    """The track name has characters that are not allowed."""

    code = 53303
    default_message = "Track name contains invalid characters"


class TrackNameIsDuplicatedError(_CodedError):
    """The participant already publishes a track with this name."""

    code = 53304
    default_message = "Track name is duplicated"


class TrackServerTrackCapacityReachedError(_CodedError):
    """The server has no capacity left for another track."""

    code = 53305
    default_message = "The server has reached capacity and cannot fulfill this request"


# --- 534xx: media -------------------------------------------------------------------------------


class MediaClientLocalDescFailedError(_CodedError):
    """The client could not create or apply its own SDP."""

    code = 53400
    default_message = "Client is unable to create or apply a local media description"


class MediaServerLocalDescFailedError(_CodedError):
    """The server could not create or apply its own SDP."""

    code = 53401
    default_message = "Server is unable to create or apply a local media description"


class MediaClientRemoteDescFailedError(_CodedError):
    """The client could not apply the SDP it received."""

    code = 53402
    default_message = "Client is unable to apply a remote media description"


class MediaServerRemoteDescFailedError(_CodedError):
    """The server could not apply the SDP it received."""

    code = 53403
    default_message = "Server is unable to apply a remote media description"


class MediaNoSupportedCodecError(_CodedError):
    """The two sides share no codec."""

    code = 53404
    default_message = "No supported codec"


class MediaConnectionError(_CodedError):
    """The media connection failed, or media stopped flowing."""

    code = 53405
    default_message = "Media connection failed or Media activity ceased"


class MediaDTLSTransportFailedError(_CodedError):
    """The DTLS handshake failed, so no media can be sent or received."""

    code = 53407
    default_message = "Media connection failed due to DTLS handshake failure"


# --- 535xx: configuration -----------------------------------------------------------------------


class ConfigurationAcquireFailedError(_CodedError):
    """The client could not get its configuration from the server."""

    code = 53500
    default_message = "Unable to acquire configuration"


class ConfigurationAcquireTurnFailedError(_CodedError):
    """The server could not hand out TURN credentials."""

    code = 53501
    default_message = "Unable to acquire TURN credentials"


def _collect() -> dict[int, type[_CodedError]]:
    table: dict[int, type[_CodedError]] = {}
    for cls in _CodedError.__subclasses__():
        assert cls.code not in table, f"duplicate Twilio error code {cls.code}"
        table[cls.code] = cls
    return dict(sorted(table.items()))


ERRORS_BY_CODE: dict[int, type[_CodedError]] = _collect()
"""Every known code, mapped to its exception class (in code order)."""

__all__ += [cls.__name__ for cls in ERRORS_BY_CODE.values()]


def from_code(code: int, message: str | None = None) -> TwilioError:
    """The exception for ``code``: its own class if the code is known, else a plain TwilioError.

    ``message`` replaces the class's default message when given (and not empty).
    """
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        return TwilioError(code, message)
    return cls(message)
