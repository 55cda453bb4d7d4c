"""Bundled demo assets (portrait, demo speech) shipped as package data; `asset_path` finds them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from engine.errors import InputError

__all__ = ["ASSETS", "asset_path"]

ASSETS: tuple[str, ...] = ("portrait.png", "demo_speech.wav")


def asset_path(name: str) -> Path:
    """Filesystem path of bundled asset `name` (e.g. "portrait.png"); InputError if there is none."""
    ref = resources.files(__name__).joinpath(name)
    if not ref.is_file():
        raise InputError(f"no bundled asset {name!r} (have: {', '.join(ASSETS)})")
    # Installed packages (regular or editable) are plain directories, so this is a real path.
    return Path(str(ref))
