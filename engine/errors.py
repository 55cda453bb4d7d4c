"""User-facing error types: one clear line for the CLI, never a traceback unless --debug."""

from __future__ import annotations


class S2TError(Exception):
    """Base for every error caused by the user's input or environment (as opposed to a bug)."""


class InputError(S2TError):
    """A file or value the user gave is missing, unreadable, corrupt or out of range."""


class AudioError(InputError):
    """Audio could not be read or is unusable (empty, corrupt, unknown format)."""


class ImageError(InputError):
    """An image could not be read or is unusable."""


class NoFaceError(ImageError):
    """No face was found where one is required."""


class DeviceUnavailableError(S2TError):
    """A hardware device or backend (audio device, virtual camera) is missing; message says the fix."""


class NotAvailableError(S2TError):
    """A requested stage or option is not available in this build (yet); the message says which."""
