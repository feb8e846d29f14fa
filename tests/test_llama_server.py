"""llama.cpp's server managed by the toolkit: the compact grammar it is sent, a clear error without the binary,
and, where `make setup-server` built it, a real server process serving concurrent episodes and leaving none
behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emoneg_bench.backends.llama_server import schema_grammar, server_binary
from emoneg_bench.domains import domain_ids, generate_scenarios
from emoneg_bench.errors import EmoNegError, InputError
from emoneg_bench.protocol import MESSAGE_CHARS, action_schema, render_action


def _scenarios():
    return [generate_scenarios(domain, 1, 3)[0] for domain in domain_ids()]


@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda s: s.domain)
def test_the_grammar_accepts_what_the_schema_allows_compactly(scenario):
    """Same verdicts as xgrammar's own compact JSON-schema grammar on valid moves and near misses."""
    import xgrammar as xgr
    from xgrammar.testing import _is_grammar_accept_string

    schema = action_schema(scenario)
    ours = xgr.Grammar.from_ebnf(schema_grammar(schema))
    reference = xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True)
    low, high = schema["properties"]["offer"]["minimum"], schema["properties"]["offer"]["maximum"]
    valid = [render_action(act, offer, message) for act in ("offer", "accept", "walkaway")
             for offer in (low, (low + high) // 2, high) for message in ("Fine.", "Now: 5% off, ok?", "x" * MESSAGE_CHARS)]
    invalid = [render_action("offer", low - 1, "a"), render_action("offer", high + 1, "a"),
               render_action("offer", low, ""), render_action("offer", low, "x" * (MESSAGE_CHARS + 1)),
               render_action("bargain", low, "a"), json.dumps({"act": "offer", "offer": low, "message": "a"}, indent=1),
               json.dumps({"offer": low, "act": "offer", "message": "a"}), f'{{"act": "offer", "offer": {low}.5, "message": "a"}}',
               f'{{"act": "offer", "offer": 0{low}, "message": "a"}}', render_action("offer", low, "a\nb").replace("\\n", "\n"),
               render_action("offer", low, 'She said "no"')]  # escapes: neither engine's bounded string has them
    for text in valid:
        assert _is_grammar_accept_string(ours, text), text
        assert _is_grammar_accept_string(reference, text), text
    for text in invalid:
        assert not _is_grammar_accept_string(ours, text), text
    every = [render_action("offer", n, "ok") for n in range(low - 3, high + 4)]
    assert [_is_grammar_accept_string(ours, t) for t in every] == [_is_grammar_accept_string(reference, t) for t in every]


def test_the_grammar_refuses_schemas_it_cannot_express():
    with pytest.raises(ValueError, match="required"):
        schema_grammar({"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
                        "additionalProperties": False})
    with pytest.raises(ValueError, match="cannot express"):
        schema_grammar({"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"],
                        "additionalProperties": False})


def test_a_missing_server_names_the_setup_command(monkeypatch, tmp_path):
    from emoneg_bench.backends import load_backend

    monkeypatch.setenv("EMONEG_LLAMA_SERVER", str(tmp_path / "llama-server"))
    with pytest.raises(EmoNegError, match="make setup-server"):
        server_binary()
    with pytest.raises(EmoNegError, match="make setup-server"):
        load_backend("llama-server:smollm2")
    with pytest.raises(InputError, match="unknown llama-server model"):
        load_backend("llama-server:no-such-model")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _tasks(count: int):
    from emoneg_bench.agents.personas import persona_names
    from emoneg_bench.negotiation import Task

    personas = persona_names(held_out=False)
    return [Task(scenario, personas[k % len(personas)], 100 + k) for k, scenario in enumerate(_scenarios()[:count])]


def test_the_server_serves_two_concurrent_episodes_and_stops(llama_server, recognizer):
    from emoneg_bench.agents.lm import LMNegotiator
    from emoneg_bench.agents.personas import PersonaAgent
    from emoneg_bench.backends import load_backend
    from emoneg_bench.engine import Engine
    from emoneg_bench.negotiation import Role

    def play():  # two episodes at once on a fresh two-slot server
        backend = load_backend("llama-server:smollm2", slots=2, threads=1)
        pid = backend.server.process.pid
        assert backend.kind == "llama-server" and _alive(pid)
        try:
            episodes = list(Engine(recognizer, 6).run(_tasks(2), LMNegotiator(backend, "random"), PersonaAgent(),
                                                      batch_size=2))
        finally:
            backend.close()
        assert not _alive(pid)
        return episodes

    episodes = play()
    focal = [u for e in episodes for u in e.turns_of(Role.FOCAL)]
    assert len(episodes) == 2 and focal
    # the grammar held: no request failed, and a reply is invalid only where the token cap cut it off (a
    # prefix of a valid object, never a finished wrong one); every offer is a structured one
    assert all(u.error is None for u in focal)
    assert all(u.text.startswith('{"act": ') and not u.text.endswith("}") for u in focal if u.offer_status == "invalid")
    assert any(u.offer_status == "structured" for u in focal)
    assert all(u.offer_status == "structured" for u in focal if str(u.act) == "offer" and u.offer_status != "invalid")

    # greedy decoding is deterministic run to run one sequence at a time (fresh servers, one slot, the same
    # requests in the same order); with concurrent slots it is not: which sequences share a batch depends on
    # request timing. (The second, cached copy of the prompt may differ from the first: llama.cpp's prefix reuse
    # is not bit-equal to a fresh prefill. See benchmarks/README.md.)
    from emoneg_bench.backends.base import SamplingParams
    from emoneg_bench.prompts import negotiator_messages

    task = _tasks(1)[0]
    from emoneg_bench.domains import get_domain

    chat = negotiator_messages(get_domain(task.scenario.domain), Role.FOCAL, task.scenario, [], "anger")
    texts = []
    for _ in range(2):
        backend = load_backend("llama-server:smollm2", slots=1, threads=1)
        try:
            texts.append([g.text for g in backend.generate([chat, chat], SamplingParams(max_new_tokens=48))])
        finally:
            backend.close()
    assert texts[0] == texts[1] and all(texts[0])


def test_a_killed_parent_leaves_no_server(llama_server, tmp_path):
    """The server dies with the process that started it, even one killed without a chance to clean up."""
    script = ("import sys, time\n"
              "from emoneg_bench.backends.llama_server import LlamaServer\n"
              "from emoneg_bench.backends.smollm2 import gguf_path\n"
              "server = LlamaServer(gguf_path(), slots=1, threads=1).start()\n"
              "print(server.process.pid, flush=True)\n"
              "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"EMONEG_LLAMA_SERVER": llama_server})
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        parent.kill()


def test_a_trained_adapter_is_served(llama_server, smollm2, tmp_path):
    """A PEFT adapter on SmolLM2 is converted to a GGUF LoRA once and changes what the server writes."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from emoneg_bench.backends import load_backend
    from emoneg_bench.backends.base import SamplingParams

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.2)
    model.save_pretrained(tmp_path / "run" / "adapter")
    chat = [[{"role": "user", "content": "Name a colour."}]]
    params = SamplingParams(max_new_tokens=12)
    texts = []
    for spec in ("llama-server:smollm2", f"llama-server:smollm2+adapter={tmp_path / 'run' / 'adapter'}"):
        backend = load_backend(spec, slots=1, threads=1)
        try:
            texts.append(backend.generate(chat, params)[0])
        finally:
            backend.close()
    assert all(g.ok for g in texts) and texts[0].text != texts[1].text
    assert backend.adapter_sha256 is not None and backend.name.endswith("+run")
