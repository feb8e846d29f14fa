"""The OpenAI-compatible HTTP backend against a real local server (tests/lm_server.py): answers, order,
retries, timeouts and the errors a batch reports instead of raising."""

import json
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from lm_server import serve

from emoneg_bench.backends.base import SamplingParams
from emoneg_bench.backends.openai_http import OpenAIChatBackend
from emoneg_bench.errors import InputError

PARAMS = SamplingParams(max_new_tokens=6)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No key or proxy from the developer's shell may change what the server sees."""
    for name in ("EMONEG_API_KEY", "OPENAI_API_KEY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def prompt_sensitive_model(tiny_model, tmp_path_factory):
    """The tiny model with its weight matrices redrawn at a larger scale: at the default initialisation its
    greedy answer is the same for every prompt, which would hide a shuffled batch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("prompt-sensitive-llama")
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, 0.3)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(folder)
    return folder


def conversations(count: int) -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You are a seller."},
             {"role": "user", "content": f"Would you take {100 + 7 * i} for the bike?"}] for i in range(count)]


def local_greedy(model_dir, batch, max_new_tokens: int) -> list[str]:
    """What the model gives in-process: chat template, greedy decoding, special tokens dropped."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    texts = []
    for conversation in batch:
        inputs = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        texts.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return texts


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_texts_equal_local_greedy_decoding_in_input_order(prompt_sensitive_model):
    batch = conversations(6)
    with serve("model", prompt_sensitive_model) as server:
        backend = OpenAIChatBackend(server.base_url, "tiny", concurrency=3)
        generations = backend.generate(batch, PARAMS)
    expected = local_greedy(prompt_sensitive_model, batch, PARAMS.max_new_tokens)
    assert len(set(expected)) == len(batch)  # distinct answers, so a shuffled batch would show
    assert [g.error for g in generations] == [None] * len(batch)
    assert [g.text for g in generations] == expected
    assert all(0 < g.completion_tokens <= PARAMS.max_new_tokens for g in generations)


def test_transient_failures_are_retried_until_success(prompt_sensitive_model):
    batch = conversations(3)
    with serve("fail-then-ok", prompt_sensitive_model, failures=2, failure_status=503) as server:
        backend = OpenAIChatBackend(server.base_url, "tiny", concurrency=3, retries=3, backoff=0.01)
        generations = backend.generate(batch, PARAMS)
        per_conversation = [server.requests_for(c) for c in batch]
    assert all(g.ok for g in generations)
    assert [g.text for g in generations] == local_greedy(prompt_sensitive_model, batch, PARAMS.max_new_tokens)
    assert per_conversation == [3, 3, 3]


def test_retry_after_header_sets_the_wait_on_429():
    with serve("fail-then-ok", failures=1, failure_status=429, retry_after="1") as server:
        backend = OpenAIChatBackend(server.base_url, "tiny", retries=2, backoff=0.0)
        started = time.monotonic()
        [generation] = backend.generate(conversations(1), PARAMS)
        elapsed = time.monotonic() - started
        assert server.requests == 2
    assert generation.ok
    assert 1.0 <= elapsed < 3.0


def test_persistent_server_errors_become_error_generations_after_all_attempts():
    batch = conversations(2)
    with serve("always-fail") as server:
        backend = OpenAIChatBackend(server.base_url, "tiny", retries=2, backoff=0.05)
        started = time.monotonic()
        generations = backend.generate(batch, PARAMS)
        elapsed = time.monotonic() - started
        per_conversation = [server.requests_for(c) for c in batch]
    assert [g.text for g in generations] == [None, None]
    for generation in generations:
        assert "HTTP 500" in generation.error and "after 3 attempts" in generation.error
        assert server.base_url in generation.error
    assert per_conversation == [3, 3]
    # Two sleeps, 0.05 s then 0.10 s, each stretched by at most 25 % jitter.
    assert 0.15 <= elapsed < 2.0


def test_a_hanging_server_costs_at_most_the_timeout_per_attempt():
    with serve("hang") as server:
        backend = OpenAIChatBackend(server.base_url, "tiny", timeout=0.5, retries=1, backoff=0.01)
        started = time.monotonic()
        generations = backend.generate(conversations(2), PARAMS)
        elapsed = time.monotonic() - started
        assert server.requests == 4
    assert all("timed out" in g.error and "after 2 attempts" in g.error for g in generations)
    assert 1.0 <= elapsed < 4.0


def test_a_body_that_is_not_json_is_an_error_generation_without_retry():
    with serve("bad-json") as server:
        [generation] = OpenAIChatBackend(server.base_url, "tiny", backoff=0.01).generate(conversations(1), PARAMS)
        assert server.requests == 1
    assert generation.text is None
    assert "not a chat completion" in generation.error


def test_unauthorized_is_reported_once_without_retry():
    with serve("unauthorized", api_key="s3cret") as server:
        [generation] = OpenAIChatBackend(server.base_url, "tiny", backoff=0.01).generate(conversations(1), PARAMS)
        assert server.requests == 1
    assert "HTTP 401" in generation.error and "not retried" in generation.error


def test_the_api_key_is_read_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("EMONEG_API_KEY", "s3cret")
    with serve("unauthorized", api_key="s3cret") as server:
        [generation] = OpenAIChatBackend(server.base_url, "tiny").generate(conversations(1), PARAMS)
    assert generation.ok


def test_the_api_key_falls_back_to_openai_api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "s3cret")
    with serve("unauthorized", api_key="s3cret") as server:
        [generation] = OpenAIChatBackend(server.base_url, "tiny").generate(conversations(1), PARAMS)
    assert generation.ok


def test_a_wrong_model_name_is_a_400_without_retry():
    with serve("model", model_name="tiny") as server:
        [generation] = OpenAIChatBackend(server.base_url, "other", backoff=0.01).generate(conversations(1), PARAMS)
        assert server.requests == 1
    assert "HTTP 400" in generation.error and "'other'" in generation.error


def test_connection_refused_is_an_error_generation_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIChatBackend(url, "tiny", retries=2, backoff=0.01, timeout=2.0)
    started = time.monotonic()
    generations = backend.generate(conversations(2), PARAMS)
    assert time.monotonic() - started < 2.0
    assert all("could not connect" in g.error and "after 3 attempts" in g.error for g in generations)


def test_an_empty_batch_sends_nothing():
    assert OpenAIChatBackend("http://127.0.0.1:9/v1", "tiny").generate([], PARAMS) == []


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/",
                                      "http://127.0.0.1:8000/v1/chat/completions"])
def test_base_url_is_normalised_to_the_api_root(base_url):
    backend = OpenAIChatBackend(base_url, "qwen")
    assert backend.url == "http://127.0.0.1:8000/v1/chat/completions"
    assert backend.name == "http:qwen@127.0.0.1:8000"


@pytest.mark.parametrize("arguments, field", [({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
                                              ({"model": ""}, "model"),
                                              ({"concurrency": 0}, "concurrency"),
                                              ({"retries": -1}, "retries"),
                                              ({"timeout": 0}, "timeout")])
def test_bad_settings_are_named_in_the_error(arguments, field):
    settings = {"base_url": "http://127.0.0.1:8000/v1", "model": "tiny"} | arguments
    with pytest.raises(InputError) as raised:
        OpenAIChatBackend(**settings)
    assert raised.value.field == field


# ---- bounded transport: deadline, byte cap, options ----------------------------------------------------

@contextmanager
def raw_server(answer):
    """A socket server calling ``answer(connection, stop)`` for each connection after reading its request
    head: for byte-level misbehaviour the HTTP test server cannot show."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop, served = threading.Event(), []

    def handle(connection):
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)
                served.append(1)
                answer(connection, stop)
            except OSError:
                pass  # the client gave up, which is what these servers test

    def loop():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1", served
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


def trickle_body(connection, stop):
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    while not stop.is_set():
        connection.sendall(b" ")
        time.sleep(0.1)


def trickle_headers(connection, stop):
    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 10_000:
        if stop.is_set():
            return
        connection.sendall(bytes([byte]))
        time.sleep(0.1)


def never_answer(connection, stop):
    stop.wait(30)


def huge_answer(connection, stop, chunked=False):
    text = "x" * 100_000
    body = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
    if chunked:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 4096):
            piece = body[start:start + 4096]
            connection.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        connection.sendall(b"0\r\n\r\n")
    else:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\n\r\n" + body)


@pytest.mark.parametrize("answer", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_server_that_trickles_bytes_is_cut_off_at_the_deadline(answer):
    with raw_server(answer) as (url, _):
        backend = OpenAIChatBackend(url, "tiny", timeout=5, deadline=1.0, retries=3, backoff=0)
        started = time.perf_counter()
        (generation,) = backend.generate(conversations(1), PARAMS)
        elapsed = time.perf_counter() - started
    assert generation.text is None and "no complete answer within the 1 s deadline" in generation.error
    assert elapsed < 2.5


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_over_the_byte_cap_is_refused_once_without_retry(chunked):
    with raw_server(lambda c, s: huge_answer(c, s, chunked)) as (url, served):
        backend = OpenAIChatBackend(url, "tiny", timeout=5, retries=3, backoff=0)
        (generation,) = backend.generate(conversations(1), PARAMS)
    cap = backend.limits.response_cap(PARAMS.max_new_tokens)
    assert cap < 100_000 and generation.text is None
    assert f"{cap:,}-byte cap" in generation.error and "not retried" in generation.error
    assert len(served) == 1


def test_the_command_line_limits_reach_the_backend_and_the_transcript_says_why_a_message_failed(capsys):
    from emoneg_bench.cli import main

    with raw_server(never_answer) as (url, _):
        started = time.perf_counter()
        code = main(["play", "--domain", "debt", "--scenario", "debt-0001", "--persona", "pushover",
                     "--focal", f"lm:{url}?model=tiny", "--schedule", "none", "--http-deadline", "1",
                     "--http-retries", "0", "--http-timeout", "30"])
        elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    assert code == 0 and elapsed < 30  # the 30 s phase timeout never fires: the 1 s deadline does
    assert "could not produce a message (no complete answer within the 1 s deadline from " in out


def test_the_schema_goes_in_response_format_and_a_server_that_ignores_it_makes_invalid_moves(recognizer):
    from emoneg_bench.agents.lm import LMNegotiator
    from emoneg_bench.agents.personas import PersonaAgent
    from emoneg_bench.domains import generate_scenarios
    from emoneg_bench.engine import Engine
    from emoneg_bench.negotiation import Ending, Role, Task
    from emoneg_bench.protocol import action_schema

    task = Task(generate_scenarios("debt", 1, seed=0)[0], "conceder", 0)
    with serve("model") as server:  # no model: it echoes the last user message, never JSON
        backend = OpenAIChatBackend(server.base_url, "tiny", retries=0)
        episode = Engine(recognizer).play(task, LMNegotiator(backend, "fixed-anger"), PersonaAgent())
        formats = list(server.response_formats)
    assert formats and all(f == {"type": "json_schema", "json_schema": {
        "name": "move", "strict": True, "schema": action_schema(task.scenario)}} for f in formats)
    focal = episode.turns_of(Role.FOCAL)
    assert [u.offer_status for u in focal] == ["invalid"] * 3  # three invalid moves in a row: breakdown
    assert episode.outcome.ending is Ending.BREAKDOWN
    assert len(formats) == 2 * len(focal)  # every invalid reply was retried once with a correction
