"""Fixtures for tests that run Chromium headless with the unmodified twilio-video.js."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import browser_env


@pytest.fixture(scope="session")
def twilio_video_dist() -> Path:
    return browser_env.twilio_video_dist()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless Chromium with fake camera and microphone, on a fresh profile."""
    from playwright.async_api import async_playwright

    executable = browser_env.chromium_path()
    profile = browser_env.user_data_dir()
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=browser_env.CHROMIUM_FLAGS
        )
        try:
            yield context
        finally:
            await context.close()
            shutil.rmtree(profile, ignore_errors=True)
