"""Selective forwarding of a group room's media: RTP in, rewritten RTP out, never decoded."""

from rtcroom.aiortc_ext.rtp import ForwardedTrack
from rtcroom.server.sfu.datarelay import PublishedDataTrack
from rtcroom.server.sfu.pacing import SubscriberPacer
from rtcroom.server.sfu.router import PublishedTrack, Router, Subscription
from rtcroom.server.sfu.simulcast import rtx_ssrcs, simulcast_ssrcs

__all__ = ["ForwardedTrack", "PublishedDataTrack", "PublishedTrack", "Router", "SubscriberPacer",
           "Subscription", "rtx_ssrcs", "simulcast_ssrcs"]
