"""llama.cpp's OpenAI-compatible ``llama-server``, started, health-checked and stopped by the toolkit.

The binary is built once from the MIT-licensed llama.cpp source inside the ``llama-cpp-python`` sdist by
``make setup-server`` (``scripts/setup-server.sh``) into ``cache_dir()/llama-server/<version>/bin``; no binary
wheel of llama.cpp reaches a machine that only sees PyPI. ``$EMONEG_LLAMA_SERVER`` names another binary.

:class:`LlamaServer` runs one server process for one GGUF model: ``slots`` parallel sequences (one per live
episode; each keeps its episode's prompt cache, so a turn computes only what is new), ``threads`` CPU threads
(fewer than the cores by default: both engines collapse when another process takes a core), a free local port,
and a log file. It starts in its own process group, is told by the kernel to exit if this process dies
(``PR_SET_PDEATHSIG``), and is stopped by :meth:`LlamaServer.stop`, by leaving its ``with`` block, or at
interpreter exit, so no server outlives its run. :class:`LlamaServerBackend` is the HTTP backend bound to such a
server (``lm:llama-server:smollm2`` on the command line, ``+adapter=FOLDER`` to serve a trained PEFT adapter,
converted once to a GGUF LoRA file by llama.cpp's own converter); the structured protocol's JSON schema is
enforced by the server while decoding, sent as the equivalent compact grammar (:func:`schema_grammar`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from pathlib import Path

from ..errors import EmoNegError
from .openai_http import OpenAIChatBackend

VERSION = "0.3.36"  # the llama-cpp-python sdist whose vendored llama.cpp is built (scripts/setup-server.sh)
SETUP = "make setup-server"
BINARY_ENV = "EMONEG_LLAMA_SERVER"
CONTEXT_PER_SLOT = 2048  # tokens; a compact 30-message prompt stays well under this
STARTUP_TIMEOUT = 120.0  # seconds for the model to load and /health to answer 200
LOG_TAIL = 1500  # characters of the server's log quoted when it fails to start


def server_binary() -> Path:
    """The ``llama-server`` binary, or one clear error naming the setup command."""
    from ..cache import cache_dir

    named = os.environ.get(BINARY_ENV)
    path = Path(named) if named else cache_dir() / "llama-server" / VERSION / "bin" / "llama-server"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"${BINARY_ENV} names {path}, which" if named else f"{path}"
        raise EmoNegError(f"llama-server is not built ({where} is not an executable file); run `{SETUP}` "
                          "(5-30 minutes on 2 cores, once) or name a binary with $" + BINARY_ENV)
    return path


def default_threads() -> int:
    """One thread fewer than the cores, at least one (a busy core stalls every thread of a batched step)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LlamaServer:
    """One managed ``llama-server`` process; use as a context manager or call :meth:`start`/:meth:`stop`."""

    def __init__(self, model: str | Path, *, slots: int = 8, threads: int | None = None, alias: str = "model",
                 lora: str | Path | None = None, context_per_slot: int = CONTEXT_PER_SLOT,
                 log_path: str | Path | None = None, startup_timeout: float = STARTUP_TIMEOUT,
                 binary: str | Path | None = None):
        if slots < 1:
            raise EmoNegError(f"llama-server needs at least one slot, got {slots}")
        self.model, self.lora = Path(model), Path(lora) if lora else None
        for label, path in (("model", self.model), ("LoRA adapter", self.lora)):
            if path is not None and not path.is_file():
                raise EmoNegError(f"{path}: the {label} GGUF file for llama-server does not exist")
        self.binary = Path(binary) if binary else server_binary()
        self.slots, self.alias = slots, alias
        self.threads = threads or default_threads()
        self.context = slots * context_per_slot
        self.startup_timeout = startup_timeout
        self._own_log = log_path is None  # a log of our own is removed when the server stops cleanly
        if log_path is None:
            handle, log_path = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(handle)
        self.log_path = Path(log_path)
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._finalizer = None

    @property
    def url(self) -> str:
        """The OpenAI API root, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise EmoNegError("llama-server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self, port: int) -> list[str]:
        command = [str(self.binary), "--model", str(self.model), "--alias", self.alias, "--host", "127.0.0.1",
                   "--port", str(port), "--parallel", str(self.slots), "--ctx-size", str(self.context),
                   "--threads", str(self.threads), "--threads-batch", str(self.threads), "--no-webui",
                   "--cont-batching"]
        if self.lora is not None:
            command += ["--lora", str(self.lora)]
        return command

    def start(self) -> LlamaServer:
        if self.process is not None:
            return self
        self.port = _free_port()
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(self.command(self.port), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        finally:
            log.close()
        self._finalizer = weakref.finalize(self, _terminate, self.process)
        atexit.register(self._finalizer)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout
        health = f"http://127.0.0.1:{self.port}/health"
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise EmoNegError(f"llama-server exited with status {code} while starting; its log "
                                  f"({self.log_path}) ends: {self._log_tail()}")
            try:
                if httpx.get(health, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                tail = self._log_tail()
                self._own_log = False  # kept for the user to read
                self.stop()
                raise EmoNegError(f"llama-server did not become healthy within {self.startup_timeout:g} s; its log "
                                  f"({self.log_path}) ends: {tail}")
            time.sleep(0.2)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL:].strip() or "(empty)"
        except OSError:
            return "(unreadable)"

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 10 s) and reap it."""
        if self._finalizer is not None:
            self._finalizer()  # idempotent: terminates once
            atexit.unregister(self._finalizer)
            self._finalizer = None
            if self._own_log:
                self.log_path.unlink(missing_ok=True)
        self.process = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def schema_grammar(schema: dict) -> str:
    """A GBNF grammar accepting exactly the compact JSON (``json.dumps`` separators, no other whitespace) of the
    objects ``schema`` allows, for the subset of JSON Schema the action protocol uses: an object whose properties
    are all required and come in order, each a string enum, a bounded integer, or a string with length bounds.
    The server's own schema conversion admits free whitespace: SmolLM2 then writes indented JSON, ~40% more
    tokens, and since the transcript shows the move compactly, the next turn's prompt leaves the slot's cache at
    the previous reply."""
    import json

    if schema.get("type") != "object" or schema.get("additionalProperties", True) is not False \
            or list(schema.get("required", [])) != list(schema.get("properties", {})):
        raise ValueError("schema_grammar handles objects whose properties are all required, in order, and closed")
    rules, parts = {}, []
    for index, (key, spec) in enumerate(schema["properties"].items()):
        name = f"v{index}"
        if "enum" in spec:
            rules[name] = " | ".join(_literal(json.dumps(value)) for value in spec["enum"])
        elif spec.get("type") == "integer" and "minimum" in spec and "maximum" in spec:
            low, high = int(spec["minimum"]), int(spec["maximum"])
            if high - low > 100_000:
                raise ValueError(f"integer range of {key!r} is too wide for an exact grammar")
            rules[name] = _trie(str(n) for n in range(low, high + 1))
        elif spec.get("type") == "string":
            low, high = int(spec.get("minLength", 0)), spec.get("maxLength")
            rules[name] = f'"\\"" char{{{low},{"" if high is None else int(high)}}} "\\""'
        else:
            raise ValueError(f"schema_grammar cannot express property {key!r}: {spec}")
        parts.append(_literal(("{" if index == 0 else ", ") + json.dumps(key) + ": ") + f" {name}")
    root = " ".join(parts) + ' "}"'
    lines = [f"root ::= {root}"] + [f"{name} ::= {body}" for name, body in rules.items()]
    # as xgrammar bounds a string for the local backend: no escapes, so no quote, backslash or control character
    lines.append('char ::= [^"\\\\\\x7F\\x00-\\x1F]')
    return "\n".join(lines) + "\n"


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _trie(words) -> str:
    """A GBNF expression matching exactly ``words`` (digit strings), factored by common prefixes."""
    tree: dict = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def expression(node: dict) -> str:
        options = []
        for ch, child in sorted(node.items()):
            if ch == "":
                continue
            rest = {k: v for k, v in child.items() if k != ""}
            if not rest:
                options.append(f'"{ch}"')
            else:
                inner = expression(rest)
                options.append(f'"{ch}" ({inner})' + ("?" if "" in child else ""))
        return " | ".join(options)

    return expression(tree)


def converter() -> Path:
    """llama.cpp's PEFT-LoRA → GGUF converter, installed beside the binary by ``make setup-server``."""
    script = server_binary().parent.parent / "convert_lora_to_gguf.py"
    if not script.is_file():
        raise EmoNegError(f"{script} is missing (an older `{SETUP}`); delete {script.parent} and run `{SETUP}` again")
    return script


def lora_gguf(adapter: str | Path, base: str | Path) -> tuple[Path, str]:
    """The PEFT adapter folder ``adapter`` (trained on the model folder ``base``) as a GGUF LoRA file that
    ``llama-server --lora`` serves at run time, and the adapter's ``weights_sha256``; converted once (float32)
    and cached by that digest."""
    import shutil

    from ..cache import cache_dir
    from ..hashing import weights_sha256

    adapter, base = Path(adapter), Path(base)
    if not (adapter / "adapter_config.json").is_file():
        raise EmoNegError(f"{adapter}: expected a PEFT adapter folder (with adapter_config.json)")
    digest = weights_sha256(adapter)
    target = cache_dir() / "llama-lora" / f"{digest[:16]}.gguf"
    if target.is_file():
        return target, digest
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        done = subprocess.run([sys.executable, str(converter()), "--base", str(base), "--outtype", "f32",
                               "--outfile", str(work / "lora.gguf"), str(adapter)], capture_output=True, text=True)
        if done.returncode != 0:
            raise EmoNegError(f"converting the adapter {adapter} to GGUF failed: {done.stderr.strip()[-LOG_TAIL:]}")
        os.replace(work / "lora.gguf", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, digest


class LlamaServerBackend(OpenAIChatBackend):
    """The HTTP backend bound to a :class:`LlamaServer` it starts on first use and stops on :meth:`close`. A
    schema goes to the server as the equivalent compact grammar (:func:`schema_grammar`), not as
    ``response_format``."""

    kind = "llama-server"

    def __init__(self, model: str | Path, *, name: str, slots: int = 32, threads: int | None = None,
                 lora: str | Path | None = None, log_path: str | Path | None = None, **options):
        self.server = LlamaServer(model, slots=slots, threads=threads, alias=name, lora=lora, log_path=log_path)
        self.server.start()
        options.setdefault("concurrency", slots)
        super().__init__(self.server.url, name, name=f"llama-server:{name}", **options)

    def constraint(self, schema: dict) -> dict:
        return {"grammar": schema_grammar(schema)}

    def close(self) -> None:
        self.server.stop()
