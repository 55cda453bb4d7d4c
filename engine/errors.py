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


def error_text(e: BaseException) -> str:
    """One line that crosses a process boundary: "ClassName: message" (read back by `error_from_text`)."""
    return f"{type(e).__name__}: {e}"


def error_from_text(text: str) -> S2TError:
    """The S2TError subclass named in an `error_text` line (S2TError with the whole line for any other name)."""
    name, _, message = text.partition(": ")
    cls = globals().get(name)
    if isinstance(cls, type) and issubclass(cls, S2TError):
        return cls(message)
    return S2TError(text)
