"""The signaling wire protocol both the client and the server speak (twilio-video.js 2.x).

:mod:`.framing` is the TwilioConnection envelope (hello / welcome / msg / heartbeat / bye /
bad / busy); :mod:`.messages` is the Room Signaling Protocol carried inside ``msg``. Wire names
are spelled as the protocol spells them, here and nowhere else.
"""

from rtcroom.signaling.fields import MessageFormatError

__all__ = ["MessageFormatError"]
