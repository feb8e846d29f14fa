"""User-facing errors: one clear sentence naming the bad input.

The CLI prints ``str(error)`` for these and exits with status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class EmoNegError(Exception):
    """A mistake in the user's input (file, name, value), reported without a traceback."""


class UnknownNameError(EmoNegError, KeyError):
    """A name (domain, persona, emotion, policy…) that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; expected one of: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class InputError(EmoNegError, ValueError):
    """A bad value in a file or argument, located as precisely as we can (file, row, field)."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None):
        where = ", ".join(
            part
            for part in (
                f"{file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        self.file, self.row, self.field = file, row, field
        super().__init__(f"{where}: {message}" if where else message)
