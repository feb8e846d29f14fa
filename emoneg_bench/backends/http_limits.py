"""How long and how much an OpenAI-compatible server may take: the settings, their command-line options,
and the defaults a command sets for every endpoint backend it creates.

A per-phase timeout alone does not bound a request: a server that trickles one byte every few seconds
never lets a read time out, and one that ignores ``max_tokens`` can send megabytes. So a message also
has an overall deadline (retries and their waits included) and a cap on the bytes of each answer.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, fields

from ..errors import InputError

RESPONSE_OVERHEAD_BYTES = 16 * 2**10  # the JSON around the text: ids, usage, finish reason, logprobs off
BYTES_PER_TOKEN = 64  # generous: a token is a few characters, JSON escapes ("\u00e9") at most 6 per character


@dataclass(frozen=True)
class HTTPLimits:
    timeout: float = field(default=60.0, metadata={
        "flag": "--http-timeout", "metavar": "SECONDS",
        "help": "connect/send/read timeout of each request phase (default %(default)s)"})
    deadline: float = field(default=180.0, metadata={
        "flag": "--http-deadline", "metavar": "SECONDS",
        "help": "most seconds one message may take in all, retries and waits included (default %(default)s)"})
    retries: int = field(default=3, metadata={
        "flag": "--http-retries", "metavar": "N",
        "help": "retries of a request after a timeout, a lost connection, HTTP 429 or 5xx (default %(default)s)"})
    max_response_bytes: int | None = field(default=None, metadata={
        "flag": "--http-max-bytes", "metavar": "BYTES",
        "help": f"largest answer accepted (default {RESPONSE_OVERHEAD_BYTES:,} + {BYTES_PER_TOKEN} per requested "
                "token)"})

    def __post_init__(self):
        for name, value in (("timeout", self.timeout), ("deadline", self.deadline)):
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
                raise InputError(f"expected a positive number of seconds, got {value!r}", field=name)
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise InputError(f"expected an integer >= 0, got {self.retries!r}", field="retries")
        if self.max_response_bytes is not None and (not isinstance(self.max_response_bytes, int)
                                                    or self.max_response_bytes < 1024):
            raise InputError(f"expected a whole number of bytes >= 1024, got {self.max_response_bytes!r}",
                             field="max_response_bytes")

    def response_cap(self, max_new_tokens: int) -> int:
        """The byte cap of one answer: the explicit one, else what ``max_new_tokens`` tokens can take."""
        if self.max_response_bytes is not None:
            return self.max_response_bytes
        return RESPONSE_OVERHEAD_BYTES + BYTES_PER_TOKEN * max(int(max_new_tokens), 1)


_CURRENT: ContextVar[HTTPLimits | None] = ContextVar("emoneg_http_limits", default=None)


def current_limits() -> HTTPLimits:
    """The limits an endpoint backend gets when its constructor is not given them."""
    return _CURRENT.get() or HTTPLimits()


@contextmanager
def using_limits(limits: HTTPLimits) -> Iterator[None]:
    token = _CURRENT.set(limits)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def add_http_options(parser: argparse.ArgumentParser) -> None:
    """The ``--http-*`` options of a command that may talk to a server, one per :class:`HTTPLimits` field."""
    group = parser.add_argument_group("HTTP endpoints (lm:http://…)")
    for spec in fields(HTTPLimits):
        kind = float if spec.type == "float" else int
        group.add_argument(spec.metadata["flag"], dest=f"http_{spec.name}", type=kind, metavar=spec.metadata["metavar"],
                           default=spec.default, help=spec.metadata["help"])


def limits_from_args(args: argparse.Namespace) -> HTTPLimits:
    """The limits the command line asked for (the defaults for a command without the options)."""
    given = {spec.name: getattr(args, f"http_{spec.name}") for spec in fields(HTTPLimits)
             if hasattr(args, f"http_{spec.name}")}
    return HTTPLimits(**given)
