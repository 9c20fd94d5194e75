"""Compiled core (sources in src/native/). Import the public layers instead: rtcroom.audiolevel,
rtcroom.dscp, rtcroom.pacer."""
