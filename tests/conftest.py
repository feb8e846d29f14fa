import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402


def _built_llama_server() -> str | None:
    """The llama-server that `make setup-server` built into the user's cache (read before the tests isolate the
    cache), or $EMONEG_LLAMA_SERVER."""
    from emoneg_bench.backends.llama_server import BINARY_ENV, server_binary
    from emoneg_bench.errors import EmoNegError

    try:
        return os.environ.get(BINARY_ENV) or str(server_binary())
    except EmoNegError:
        return None


LLAMA_SERVER = _built_llama_server()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Every test session trains its own recognizer into a fresh cache: no state leaks in from $HOME."""
    previous = os.environ.get("EMONEG_CACHE")
    os.environ["EMONEG_CACHE"] = str(tmp_path_factory.mktemp("emoneg-cache"))
    yield
    if previous is None:
        os.environ.pop("EMONEG_CACHE", None)
    else:
        os.environ["EMONEG_CACHE"] = previous


@pytest.fixture(scope="session")
def recognizer(_isolated_cache):
    from emoneg_bench.perception.recognizer import default_recognizer

    return default_recognizer()


@pytest.fixture(scope="session")
def engine(recognizer):
    from emoneg_bench.engine import Engine

    return Engine(recognizer)


@pytest.fixture(scope="session")
def smollm2(_isolated_cache):
    """The converted SmolLM2-135M-Instruct folder (converted once per test session, ~30 s)."""
    from emoneg_bench.backends.smollm2 import smollm2_folder

    return smollm2_folder()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, smollm2):
    """A randomly initialised 2-layer Llama (~6.4M parameters) with SmolLM2's tokenizer and chat template.
    Input and output embeddings are untied: tied random embeddings make greedy decoding repeat the
    prompt's last token, so every text would be empty and comparisons would check nothing."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def small_release(tmp_path_factory, recognizer):
    """The `small` profile of the v1 builder config, built once per test session (~4 s)."""
    from builders.build import build
    from builders.config import load_config

    return build(load_config("builders/configs/emoneg-v1.yaml", "small"), tmp_path_factory.mktemp("small-release"),
                 progress=False)


@pytest.fixture
def llama_server(monkeypatch):
    """The built llama-server binary (its tests skip without `make setup-server`)."""
    if LLAMA_SERVER is None:
        pytest.skip("llama-server is not built; run `make setup-server`")
    monkeypatch.setenv("EMONEG_LLAMA_SERVER", LLAMA_SERVER)
    return LLAMA_SERVER
