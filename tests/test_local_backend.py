"""The local Hugging Face backend: batched greedy generation equals unbatched generation, seeds make sampling
reproducible, outputs come back in input order, adapters load, bad inputs are clear errors."""

from __future__ import annotations

import hashlib
import warnings

import pytest

from emoneg_bench.backends.base import Generation, SamplingParams
from emoneg_bench.backends.local import LocalHFBackend
from emoneg_bench.domains import domain_ids, generate_scenarios, get_domain
from emoneg_bench.errors import InputError
from emoneg_bench.negotiation import Role
from emoneg_bench.prompts import negotiator_messages

GREEDY = SamplingParams(max_new_tokens=16)


def _conversations() -> list[list[dict[str, str]]]:
    """Seven prompts from 10 to ~210 tokens, not in length order: one per domain (with and without an
    emotion instruction) and three short chats."""
    negotiations = [
        negotiator_messages(get_domain(domain), Role.FOCAL, generate_scenarios(domain, 1, seed=3)[0], [],
                            emotion="anger" if k % 2 else None)
        for k, domain in enumerate(domain_ids())
    ]
    chats = [[{"role": "user", "content": "Hi"}],
             [{"role": "user", "content": "Offer me a price for a used bike, in one sentence."}],
             [{"role": "system", "content": "You are a landlord."},
              {"role": "user", "content": "Could the rent go down by fifty a month if I sign for two years?"}]]
    return [chats[0], *negotiations[:2], chats[1], *negotiations[2:], chats[2]][:7]


@pytest.fixture(scope="module")
def talkative_model(tiny_model, tmp_path_factory):
    """``tiny_model`` with an untied output head. The shared fixture ties input and output embeddings, so
    greedy decoding just echoes the prompt's last token (a newline) and every text would be empty; an
    untied random head makes the text depend on the whole prompt, with many near-tied logits, which is
    the strict case for batch invariance."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("talkative-tiny")
    config = LlamaConfig.from_pretrained(tiny_model)
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def backend(talkative_model):
    return LocalHFBackend(talkative_model, batch_size=4, dtype="float32")  # batch-independent greedy text


@pytest.fixture(scope="module")
def lora_adapter(talkative_model, tmp_path_factory):
    """A rank-4 LoRA on q_proj/v_proj with random (non-zero) B matrices, so it changes the model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("adapters") / "negotiator-lora"
    with warnings.catch_warnings():  # peft 0.21 calls a method transformers 5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(talkative_model),
                               LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    model.save_pretrained(folder)
    return folder


def texts(generations: list[Generation]) -> list[str | None]:
    return [generation.text for generation in generations]


def test_greedy_batched_generation_equals_unbatched(backend, talkative_model):
    conversations = _conversations()
    batched = backend.generate(conversations, GREEDY)
    one_by_one = LocalHFBackend(talkative_model, batch_size=1, dtype="float32").generate(conversations, GREEDY)
    assert texts(batched) == texts(one_by_one)
    assert [g.completion_tokens for g in batched] == [g.completion_tokens for g in one_by_one]
    assert all(g.ok and g.text for g in batched)
    assert len(set(texts(batched))) == len(conversations)  # prompt-dependent, so a mix-up would show


def test_greedy_batched_generation_equals_unbatched_with_smollm2(smollm2):
    conversations = _conversations()[:6]
    params = SamplingParams(max_new_tokens=24)
    batched = LocalHFBackend(smollm2, batch_size=4, dtype="float32").generate(conversations, params)
    one_by_one = LocalHFBackend(smollm2, batch_size=1, dtype="float32").generate(conversations, params)
    assert texts(batched) == texts(one_by_one)
    assert all(g.ok and g.text for g in batched)
    assert all(0 < g.completion_tokens <= 24 for g in batched)
    # A one-sentence answer ends with <|im_end|> before the limit; the padding after it is not counted.
    assert any(g.completion_tokens < 24 for g in batched)
    assert [g.completion_tokens for g in batched] == [g.completion_tokens for g in one_by_one]


def test_greedy_generation_is_the_same_on_every_call(backend):
    conversations = _conversations()
    assert texts(backend.generate(conversations, GREEDY)) == texts(backend.generate(conversations, GREEDY))


def test_sampling_with_the_same_seed_reproduces(backend):
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=7)
    conversations = _conversations()
    assert texts(backend.generate(conversations, params)) == texts(backend.generate(conversations, params))


def test_sampling_with_different_seeds_differs(backend):
    conversations = _conversations()
    first = backend.generate(conversations, SamplingParams(max_new_tokens=12, temperature=1.0, seed=1))
    second = backend.generate(conversations, SamplingParams(max_new_tokens=12, temperature=1.0, seed=2))
    assert all(a.text != b.text for a, b in zip(first, second))


def test_sampling_differs_from_greedy(backend):
    conversations = _conversations()
    sampled = backend.generate(conversations, SamplingParams(max_new_tokens=12, temperature=1.0))
    assert texts(sampled) != texts(backend.generate(conversations, SamplingParams(max_new_tokens=12)))


def test_outputs_come_back_in_input_order(backend):
    conversations = _conversations()  # deliberately not sorted by length; the backend sorts internally
    forward = backend.generate(conversations, GREEDY)
    backward = backend.generate(conversations[::-1], GREEDY)
    assert texts(backward) == texts(forward)[::-1]


def test_completion_tokens_never_exceed_max_new_tokens(backend):
    for generation in backend.generate(_conversations(), SamplingParams(max_new_tokens=5)):
        assert 0 < generation.completion_tokens <= 5


def test_completion_tokens_stop_at_the_first_end_of_sequence(backend):
    eos = backend.tokenizer.eos_token_id
    words = backend.tokenizer("a fair price", add_special_tokens=False)["input_ids"]
    stopped = backend.decoder.decoded([*words, eos, eos, eos])  # a row that finished early is padded with EOS
    assert stopped == Generation("a fair price", completion_tokens=len(words) + 1)
    assert backend.decoder.decoded(words).completion_tokens == len(words)  # hit max_new_tokens without EOS


def test_a_lora_adapter_loads_and_changes_the_output(backend, talkative_model, lora_adapter):
    adapted = LocalHFBackend(talkative_model, adapter=lora_adapter, batch_size=4)
    assert adapted.name == f"hf:{talkative_model.name}+adapter:negotiator-lora"
    conversations = _conversations()
    assert texts(adapted.generate(conversations, GREEDY)) != texts(backend.generate(conversations, GREEDY))
    expected = hashlib.sha256((lora_adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert adapted.adapter_sha256 == expected


def test_name_and_model_fingerprint(backend, talkative_model):
    assert backend.name == f"hf:{talkative_model.name}"
    assert backend.adapter_sha256 is None
    assert backend.model_sha256 == hashlib.sha256((talkative_model / "model.safetensors").read_bytes()).hexdigest()
    assert LocalHFBackend(talkative_model, name="my-negotiator").name == "my-negotiator"


def test_a_failed_batch_becomes_errors_not_an_exception(talkative_model, monkeypatch):
    backend = LocalHFBackend(talkative_model, batch_size=4)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(backend.model, "forward", out_of_memory)
    generations = backend.generate(_conversations()[:3], GREEDY)
    assert len(generations) == 3
    assert all(not g.ok and g.text is None and "CUDA out of memory" in g.error for g in generations)


def test_no_conversations_give_no_generations(backend):
    assert backend.generate([], GREEDY) == []


def test_a_conversation_that_is_not_a_list_of_messages_is_a_value_error(backend):
    with pytest.raises(ValueError, match="conversation 1"):
        backend.generate([[{"role": "user", "content": "Hi"}], "Hi"], GREEDY)


def test_a_missing_model_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no-such-model"):
        LocalHFBackend(tmp_path / "no-such-model")


def test_a_folder_without_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        LocalHFBackend(tmp_path)


def test_a_missing_adapter_is_an_input_error(talkative_model, tmp_path):
    with pytest.raises(InputError, match="no-such-adapter"):
        LocalHFBackend(talkative_model, adapter=tmp_path / "no-such-adapter")


def test_float16_on_cpu_is_refused(talkative_model):
    with pytest.raises(InputError, match="float16"):
        LocalHFBackend(talkative_model, dtype="float16", device="cpu")


def test_auto_dtype_is_bfloat16_only_where_the_device_computes_it_natively(talkative_model):
    from emoneg_bench.backends.local import native_bfloat16

    backend = LocalHFBackend(talkative_model, device="cpu")  # dtype="auto"
    expected = "bfloat16" if native_bfloat16(backend.device) else "float32"
    assert backend.dtype == expected and backend.kind == f"transformers-{expected}"
    assert str(next(backend.model.parameters()).dtype) == f"torch.{expected}"
    assert LocalHFBackend(talkative_model, dtype="float32").kind == "transformers-float32"
    generations = backend.generate(_conversations()[:2], GREEDY)
    assert all(g.ok for g in generations)


def test_an_unknown_dtype_is_an_input_error(talkative_model):
    with pytest.raises(InputError, match="float64"):
        LocalHFBackend(talkative_model, dtype="float64")


def test_an_unknown_device_is_an_input_error(talkative_model):
    with pytest.raises(InputError, match="tpu9"):
        LocalHFBackend(talkative_model, device="tpu9")


# ------------------------------------------------------------------ KV reuse across turns and constrained decoding

def _episode_turns(domain: str = "debt") -> list[list[dict[str, str]]]:
    """Three growing prompts of one negotiation (each extends the previous one), as an LM negotiator sends."""
    from emoneg_bench.negotiation import Act, Utterance

    scenario = generate_scenarios(domain, 1, seed=5)[0]
    d = get_domain(domain)
    history: list = []
    prompts = []
    texts_ = ["We need this settled in 20 days.", "That is far too soon; 90 days is what we can do.",
              "I can stretch to 30 days, no more.", "Let us meet at 75 days."]
    for turn in range(0, 5, 2):
        prompts.append(negotiator_messages(d, Role.FOCAL, scenario, history, "anger"))
        for k in (turn, turn + 1):
            if k < len(texts_):
                role = Role.FOCAL if k % 2 == 0 else Role.COUNTERPARTY
                history.append(Utterance(k, role, texts_[k], Act.OFFER, 20.0 + 10 * k, "structured",
                                         "anger" if role is Role.FOCAL else None, "neutral", 0.5))
    return prompts


def test_kv_reuse_gives_the_same_greedy_text_as_a_fresh_prefill(talkative_model):
    fresh = LocalHFBackend(talkative_model, batch_size=4, dtype="float32")
    reusing = LocalHFBackend(talkative_model, batch_size=4, dtype="float32")
    turns = [_episode_turns("debt"), _episode_turns("student")]
    params = SamplingParams(max_new_tokens=12)
    for k in range(3):
        conversations = [episode[k] for episode in turns]
        expected = texts(fresh.generate(conversations, params))
        got = texts(reusing.generate(conversations, params, sessions=["debt", "student"]))
        assert got == expected
        if k:  # from the second turn on, each episode's prompt started from its cached prefix
            assert all(len(s.ids) > 20 for s in reusing.decoder.sessions.values())
    assert set(reusing.decoder.sessions) == {"debt", "student"}
    from emoneg_bench.backends.decoding import KEEP_UNUSED_CALLS

    for _ in range(KEEP_UNUSED_CALLS):
        reusing.generate([turns[0][0]], params, sessions=["other"])
    assert set(reusing.decoder.sessions) == {"other"}  # sessions unused for KEEP_UNUSED_CALLS calls are dropped


def test_a_newcomer_prefilled_apart_gives_the_same_greedy_text(talkative_model):
    """Continuing episodes (short new suffixes) and one on its first turn (a whole prompt) in one batch: the
    newcomer is prefilled on its own first, and every reply is what a fresh prefill gives."""
    fresh = LocalHFBackend(talkative_model, batch_size=8, dtype="float32")
    reusing = LocalHFBackend(talkative_model, batch_size=8, dtype="float32")
    episodes = {d: _episode_turns(d) for d in ("debt", "student", "disaster", "hospital")}
    params = SamplingParams(max_new_tokens=12)
    continuing = ["debt", "student", "disaster"]
    reusing.generate([episodes[d][0] for d in continuing], params, sessions=continuing)
    conversations = [episodes[d][1] for d in continuing] + [episodes["hospital"][0]]
    got = texts(reusing.generate(conversations, params, sessions=[*continuing, "hospital"]))
    assert reusing.decoder.prefilled_apart == 1
    assert got == texts(fresh.generate(conversations, params))
    # the newcomer's session continues like any other
    following = [episodes[d][2] for d in continuing] + [episodes["hospital"][1]]
    assert texts(reusing.generate(following, params, sessions=[*continuing, "hospital"])) == texts(
        fresh.generate(following, params))


def test_the_grammar_forces_a_valid_move_whatever_the_weights(backend):
    from emoneg_bench.protocol import Action, action_schema, parse_action

    scenarios = [generate_scenarios(domain, 2, seed=7)[1] for domain in domain_ids()]
    conversations = [negotiator_messages(get_domain(s.domain), Role.FOCAL, s, [], "joy") for s in scenarios]
    generations = backend.generate(conversations, SamplingParams(max_new_tokens=200),
                                   schemas=[action_schema(s) for s in scenarios])
    for generation, scenario in zip(generations, scenarios):
        action = parse_action(generation.text, scenario)
        assert isinstance(action, Action), (generation.text, action)
    unconstrained = texts(backend.generate(conversations, SamplingParams(max_new_tokens=40)))
    assert not any(isinstance(parse_action(t, s), Action) for t, s in zip(unconstrained, scenarios))


def test_the_decoding_attention_equals_sdpa_with_padding_masks():
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from emoneg_bench.backends.decoding import register_attention

    attention = AttentionInterface._global_mapping[register_attention()]
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    generator = torch.Generator().manual_seed(0)
    for dtype, tolerance in ((torch.bfloat16, 2e-2), (torch.float32, 0.0)):
        query = torch.randn(4, 9, 1, 16, generator=generator).to(dtype)
        key, value = (torch.randn(4, 3, 20, 16, generator=generator).to(dtype) for _ in range(2))
        mask = torch.ones(4, 1, 1, 20, dtype=torch.bool)
        mask[1, ..., :7] = False  # a left-padded row
        mask[3, ..., :15] = False
        ours, _ = attention(module, query, key, value, mask, scaling=0.25)
        reference, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=0.25)
        assert ours.shape == reference.shape == (4, 1, 9, 16)
        assert (ours.float() - reference.float()).abs().max().item() <= tolerance
