"""Any OpenAI-compatible chat-completions endpoint (vLLM, TGI, Ollama, ``transformers serve``, hosted APIs)
as a :class:`Backend`.

One POST per conversation, ``concurrency`` at a time over one shared ``httpx.Client``. Every phase of a
request (connect, write, read, waiting for a pooled connection) is bounded by ``timeout``, so a server that
hangs costs at most ``timeout`` per attempt; the whole message, retries and waits included, is bounded by
``deadline`` (a server trickling bytes never lets a phase time out); an answer is read as a stream and
refused past ``max_response_bytes`` (by default what ``max_new_tokens`` tokens can take), so a server that
ignores ``max_tokens`` cannot send megabytes. Unset, these come from
:func:`~emoneg_bench.backends.http_limits.current_limits` (the command line's ``--http-*`` options).
HTTP 429, 5xx, connection errors and timeouts are retried ``retries`` times with exponential backoff,
``backoff · 2^attempt`` (a numeric ``Retry-After`` header wins, capped at :data:`RETRY_AFTER_CAP` seconds);
any other status (400, 401, 404…) is final at once. A request that still fails becomes a ``Generation``
whose ``error`` says what failed, where, and after how many attempts; the rest of the batch is unaffected.
"""

from __future__ import annotations

import os
import time
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from ..errors import InputError
from .base import Backend, Generation, Message, SamplingParams
from .http_limits import HTTPLimits, current_limits

FALLBACK_API_KEY_ENV = "OPENAI_API_KEY"
RETRY_AFTER_CAP = 30.0  # seconds; a server asking for longer is treated as asking for this long
JITTER = 0.25  # at most +25 % on each backoff delay, so a failed batch does not retry in lock-step
ERROR_BODY_CHARS = 200


class OpenAIChatBackend(Backend):
    """``base_url`` is the API root, e.g. ``http://127.0.0.1:8000/v1`` (a URL ending in ``/chat/completions``
    is accepted too). The API key is read from ``$<api_key_env>``, else ``$OPENAI_API_KEY``; without either,
    requests carry no ``Authorization`` header (local servers rarely want one)."""

    kind = "http"

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "EMONEG_API_KEY", concurrency: int = 8,
                 timeout: float | None = None, retries: int | None = None, backoff: float = 0.5,
                 name: str | None = None, deadline: float | None = None, max_response_bytes: int | None = None):
        defaults = current_limits()
        timeout = defaults.timeout if timeout is None else timeout
        retries = defaults.retries if retries is None else retries
        root = base_url.strip().rstrip("/")
        root = root.removesuffix("/chat/completions")
        parts = urlsplit(root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"expected an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}",
                             field="base_url")
        if not model:
            raise InputError("the endpoint needs a model name (the name the server serves it under)", field="model")
        for field, value, low in (("concurrency", concurrency, 1), ("retries", retries, 0)):
            if not isinstance(value, int) or value < low:
                raise InputError(f"expected an integer >= {low}, got {value!r}", field=field)
        if not timeout > 0:
            raise InputError(f"expected a positive number of seconds, got {timeout!r}", field="timeout")
        if not backoff >= 0:
            raise InputError(f"expected a non-negative number of seconds, got {backoff!r}", field="backoff")
        self.base_url = root
        self.url = f"{root}/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.limits = HTTPLimits(timeout=self.timeout, retries=retries,
                                 deadline=defaults.deadline if deadline is None else deadline,
                                 max_response_bytes=defaults.max_response_bytes if max_response_bytes is None
                                 else max_response_bytes)
        self.deadline = float(self.limits.deadline)
        self.name = name or f"http:{model}@{parts.netloc.rsplit('@', 1)[-1]}"

    def generate(self, conversations: Sequence[Sequence[Message]], params: SamplingParams,
                 schemas: Sequence[dict | None] | None = None,
                 sessions: Sequence[Hashable | None] | None = None) -> list[Generation]:
        """``schemas`` go to the server as ``response_format: {"type": "json_schema", …}`` (vLLM, SGLang,
        llama.cpp's server and hosted APIs enforce it while decoding; a server that ignores it may answer
        anything, which the caller checks). ``sessions`` are not sent: servers cache prompt prefixes
        themselves."""
        import httpx

        if not conversations:
            return []
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.api_key_env) or os.environ.get(FALLBACK_API_KEY_ENV)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        workers = min(self.concurrency, len(conversations))
        # no cap on connections: an attempt abandoned at its deadline may hold one until its socket gives up,
        # and must not starve the batch; the worker threads bound the concurrency
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=workers)
        with httpx.Client(timeout=httpx.Timeout(self.timeout), limits=limits, headers=headers) as client, \
                ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emoneg-http") as pool:
            futures = [pool.submit(self._complete, client, index, list(messages), params,
                                   schemas[index] if schemas is not None else None)
                       for index, messages in enumerate(conversations)]
            return [future.result() for future in futures]

    def constraint(self, schema: dict) -> dict:
        """The request fields that ask the server to follow ``schema`` while decoding."""
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "move", "strict": True, "schema": schema}}}

    def _complete(self, client: Any, index: int, messages: list[Message], params: SamplingParams,
                  schema: dict | None = None) -> Generation:
        """One conversation: the request, its retries, and the parsed answer (or the final error)."""
        import httpx

        payload = {"model": self.model, "messages": messages, "max_tokens": params.max_new_tokens,
                   "temperature": params.temperature, "top_p": params.top_p, "seed": params.seed}
        if schema is not None:
            payload |= self.constraint(schema)
        attempts = self.retries + 1
        cap = self.limits.response_cap(params.max_new_tokens)
        end = time.monotonic() + self.deadline
        for attempt in range(attempts):
            retry_after = None
            try:
                response = _post_within(client, self.url, payload, end, cap)
            except _Refused as refusal:
                return Generation(None, error=f"{refusal} from {self.url}; not retried")
            except _DeadlinePassed:
                return Generation(None, error=f"no complete answer within the {self.deadline:g} s deadline from "
                                              f"{self.url} ({attempt + 1} of {attempts} attempts made)")
            except httpx.TimeoutException as error:
                failure = f"timed out ({type(error).__name__}, limit {self.timeout:g} s)"
            except httpx.TransportError as error:
                failure = f"could not connect or lost the connection ({type(error).__name__}: {error})"
            else:
                if response.status_code == 200:
                    return self._parse(response)
                failure = f"HTTP {response.status_code} ({_error_detail(response)})"
                if not _retryable(response.status_code):
                    return Generation(None, error=f"{failure} from {self.url}; not retried "
                                                  f"(status {response.status_code} is not transient)")
                retry_after = _retry_after_seconds(response)
            if attempt + 1 < attempts:
                wait = retry_after if retry_after is not None else self._delay(index, attempt)
                if time.monotonic() + wait >= end:
                    return Generation(None, error=f"{failure} from {self.url}; the {self.deadline:g} s deadline "
                                                  f"leaves no time for a retry ({attempt + 1} of {attempts} attempts "
                                                  "made)")
                time.sleep(wait)
        return Generation(None, error=f"{failure} from {self.url} after {attempts} attempts")

    def _delay(self, index: int, attempt: int) -> float:
        """``backoff · 2^attempt``, stretched by a deterministic per-conversation jitter of up to +25 %."""
        jitter = 1.0 + JITTER * ((index * 7 + attempt) % 8) / 8
        return self.backoff * 2 ** attempt * jitter

    def _parse(self, response: Any) -> Generation:
        try:
            body = response.json()
            text = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Generation(None, error=f"HTTP 200 from {self.url} but the body is not a chat completion "
                                          f"(expected JSON with choices[0].message.content): "
                                          f"{response.text[:ERROR_BODY_CHARS]!r}")
        if not isinstance(text, str):
            return Generation(None, error=f"the chat completion from {self.url} has no text content "
                                          f"(choices[0].message.content is {text!r})")
        usage = body.get("usage") if isinstance(body, dict) else None
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        return Generation(text, completion_tokens=tokens if isinstance(tokens, int) else 0)


class _Refused(Exception):
    """An answer that must not be read (over the byte cap); the message says why."""


class _DeadlinePassed(Exception):
    """The message's overall deadline passed during an attempt."""


# what is dropped from the headers of an answer read as a stream: its bytes are kept decoded
_STREAM_HEADERS = ("content-encoding", "content-length", "transfer-encoding")


def _post_within(client: Any, url: str, payload: dict, end: float, cap: int) -> Any:
    """POST ``payload`` and read the answer (decoded bytes, at most ``cap``) before the monotonic time
    ``end``; an ``httpx.Response`` holding the whole body. The attempt runs on its own thread so that even
    a server trickling its headers cannot hold the caller past ``end``; an abandoned attempt stops at its
    next read (the client's sockets close when the batch ends)."""
    import threading

    import httpx

    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            with client.stream("POST", url, json=payload) as response:
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise _Refused(f"an answer of {int(declared):,} bytes, over the {cap:,}-byte cap")
                body, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        raise _Refused(f"an answer of more than {cap:,} bytes, over the {cap:,}-byte cap (does the "
                                       "server ignore max_tokens?)")
                    if time.monotonic() > end:
                        raise _DeadlinePassed()
                    body.append(chunk)
                headers = [(k, v) for k, v in response.headers.items() if k.lower() not in _STREAM_HEADERS]
                outcome["response"] = httpx.Response(response.status_code, headers=headers, content=b"".join(body))
        except BaseException as error:  # handed to the caller's thread as is
            outcome["error"] = error

    worker = threading.Thread(target=attempt, name="emoneg-http-attempt", daemon=True)
    worker.start()
    worker.join(max(end - time.monotonic(), 0.0))
    if worker.is_alive():
        raise _DeadlinePassed()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def _retryable(status: int) -> bool:
    return status == 429 or 500 <= status < 600


def _retry_after_seconds(response: Any) -> float | None:
    """A numeric ``Retry-After`` header in seconds, capped; an HTTP-date or junk falls back to backoff."""
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is None or seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _error_detail(response: Any) -> str:
    """The server's own error message (OpenAI shape ``{"error": {"message": …}}``) or the start of the body."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message[:ERROR_BODY_CHARS]
    except (ValueError, AttributeError):
        pass
    text = response.text.strip()
    return text[:ERROR_BODY_CHARS] if text else "empty body"
