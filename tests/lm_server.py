"""A real, small OpenAI-compatible chat server for tests: standard-library HTTP on 127.0.0.1, a free port,
one background thread, and a ``mode`` that decides how it misbehaves.

Modes:

- ``model``: serves ``/v1/chat/completions`` with the model in ``model_dir`` (greedy decoding of
  ``max_tokens`` after the chat template), or, without ``model_dir``, echoes the last user message;
  a request whose ``model`` is not ``model_name`` gets 400, as ``transformers serve`` answers;
- ``fail-then-ok``: the first ``failures`` requests *of each conversation* get ``failure_status`` (503, or
  429 with ``Retry-After: retry_after``), later ones are served as in ``model``;
- ``always-fail``: 500 always;
- ``hang``: reads the request, then sleeps (in small steps, until shutdown or ``hang_seconds``) before
  answering;
- ``bad-json``: 200 with a body that is not JSON;
- ``unauthorized``: 401 unless ``Authorization: Bearer <api_key>``, then served as in ``model``.

``serve`` yields a :class:`RunningServer`: its ``base_url`` and the request counts, per conversation.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = ("model", "fail-then-ok", "always-fail", "hang", "bad-json", "unauthorized")
HANG_STEP = 0.05


@dataclass
class RunningServer:
    base_url: str
    mode: str
    counts: Counter = field(default_factory=Counter)  # conversation key → requests received
    lock: threading.Lock = field(default_factory=threading.Lock)
    response_formats: list = field(default_factory=list)  # each request's response_format (None when absent)

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def requests_for(self, messages: list[dict[str, str]]) -> int:
        with self.lock:
            return self.counts[conversation_key(messages)]

    def _count(self, messages: Any) -> int:
        with self.lock:
            key = conversation_key(messages)
            self.counts[key] += 1
            return self.counts[key]


def conversation_key(messages: Any) -> str:
    return json.dumps(messages, sort_keys=True)


class _Responder:
    """Turns a parsed request into a reply with the served model (or an echo when there is none)."""

    def __init__(self, model_dir: Path | None, model_name: str):
        self.model_name = model_name
        self.lock = threading.Lock()  # one generation at a time: deterministic and torch-thread safe
        self.tokenizer = self.model = None
        if model_dir is not None:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def complete(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("model") != self.model_name:
            return 400, {"error": {"message": f"model {request.get('model')!r} is not served here; "
                                              f"this server serves {self.model_name!r}",
                                   "type": "invalid_request_error", "code": "model_not_found"}}
        messages, max_tokens = request["messages"], int(request.get("max_tokens") or 16)
        if self.model is None:
            text, prompt_tokens, completion_tokens = f"echo: {messages[-1]['content']}", 0, 1
        else:
            text, prompt_tokens, completion_tokens = self._generate(messages, max_tokens)
        return 200, {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                     "model": self.model_name,
                     "choices": [{"index": 0, "finish_reason": "length",
                                  "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                               "total_tokens": prompt_tokens + completion_tokens}}

    def _generate(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[str, int, int]:
        import torch

        inputs = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)
        with self.lock, torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
        prompt_tokens = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_tokens:]
        return self.tokenizer.decode(new_tokens, skip_special_tokens=True), prompt_tokens, len(new_tokens)


def _handler(server: RunningServer, responder: _Responder, stopping: threading.Event,
             options: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a client that opens a connection and sends nothing cannot hold a thread for long

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                request = json.loads(self.rfile.read(length))
            except ValueError:
                return self._send(400, {"error": {"message": "request body is not JSON"}})
            seen = server._count(request.get("messages"))
            with server.lock:
                server.response_formats.append(request.get("response_format"))
            mode = server.mode
            if mode == "fail-then-ok" and seen <= options["failures"]:
                status = options["failure_status"]
                headers = {"Retry-After": str(options["retry_after"])} if status == 429 else {}
                return self._send(status, {"error": {"message": f"injected failure {seen}"}}, headers)
            if mode == "always-fail":
                return self._send(500, {"error": {"message": "injected failure"}})
            if mode == "hang":
                deadline = time.monotonic() + options["hang_seconds"]
                while not stopping.is_set() and time.monotonic() < deadline:
                    time.sleep(HANG_STEP)
                return self._send(504, {"error": {"message": "hung"}})
            if mode == "bad-json":
                return self._send_raw(200, b"<html>this is not JSON", "text/html")
            if mode == "unauthorized" and self.headers.get("Authorization") != f"Bearer {options['api_key']}":
                return self._send(401, {"error": {"message": "invalid API key", "type": "invalid_request_error"}})
            self._send(*responder.complete(request))

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

        def _send_raw(self, status: int, body: bytes, content_type: str,
                      headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a timeout test), which is the point

    return Handler


@contextmanager
def serve(mode: str, model_dir: Path | None = None, *, model_name: str = "tiny", failures: int = 2,
          failure_status: int = 503, retry_after: str = "0", hang_seconds: float = 10.0,
          api_key: str = "test-key") -> Iterator[RunningServer]:
    """Run the server in ``mode`` until the block exits; it always shuts down, hanging requests included."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    responder = _Responder(model_dir, model_name)
    stopping = threading.Event()
    options = {"failures": failures, "failure_status": failure_status, "retry_after": retry_after,
               "hang_seconds": hang_seconds, "api_key": api_key}
    running = RunningServer(base_url="", mode=mode)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(running, responder, stopping, options))
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    running.base_url = f"http://{host}:{port}/v1"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"lm-server-{mode}", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
