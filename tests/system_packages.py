"""Debian packages the tests need, installed when missing, so a fresh machine (and CI) gets them
from the project's own files. Installing needs root, as the tests run in CI."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_command(command: str, *packages: str) -> str:
    """The path of `command`, apt-get installing `packages` first if it is not on PATH.

    Raises RuntimeError (so the test fails, never skips silently) when it cannot be had.
    """
    path = shutil.which(command)
    if path is not None:
        return path
    if os.geteuid() != 0:
        raise RuntimeError(f"{command} is missing and only root can install it: "
                           f"apt-get install -y {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    path = shutil.which(command)
    if path is None:
        raise RuntimeError(f"apt-get installed {' '.join(packages)} but {command} is not on PATH")
    return path
