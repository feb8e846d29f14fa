"""A local Hugging Face causal language model (optionally with a PEFT adapter) as a :class:`Backend`.

Generation is batched with left padding. Conversations are sorted by prompt length before they are cut
into batches (less padding) and the outputs are put back in input order.

Decoding (``backends.decoding``) reuses each live episode's key/value cache across its turns when the caller
names sessions, and enforces a JSON schema per conversation with xgrammar when the caller gives one.

Reproducibility:

- **Greedy** decoding (``temperature == 0``) in float32 gives the same text for a conversation whatever
  the batch it lands in and whether its prefix came from a session cache or a fresh prefill (the tests check
  batched == unbatched and reused == fresh with SDPA attention, the transformers default).
- **Sampling** seeds torch with ``params.seed`` at the start of each call, so the same call reproduces,
  but a conversation's sample depends on the batch it shares (random draws are made for the whole
  batch), i.e. on ``batch_size`` and on the other conversations of the call.
- ``dtype="auto"`` (the default) computes in **bfloat16 where the device does so natively** (a CPU with
  AVX512-BF16 or AMX, a CUDA GPU with bf16) and in float32 elsewhere: on this project's 2-core CPU, bf16 made a
  SmolLM2 decoding step 2.3-2.9x and a 100-token prefill 3.6x faster than float32. Greedy text is still the
  same run to run, but bf16 rounding depends on the batch shape, so a conversation's greedy reply can change
  with its batch's composition (and a reused prefix equals a fresh one only up to that rounding). The dtype
  used is part of the backend's ``kind`` (``transformers-bfloat16``), which evaluation records in provenance;
  pass ``dtype="float32"`` for batch-independent greedy text.

Decoding is defined by :class:`SamplingParams` alone: the model folder's ``generation_config.json`` is
replaced by one holding only its special-token ids, so no hidden ``top_k`` or ``repetition_penalty``
from a checkpoint changes what a run means.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hashing import weights_sha256
from .base import Backend, Generation, Message, SamplingParams

DTYPES = ("auto", "float32", "bfloat16", "float16")


def native_bfloat16(device) -> bool:
    """Does ``device`` compute bfloat16 matrix products natively (not by emulation, slower than float32)?"""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


class LocalHFBackend(Backend):
    """``LocalHFBackend("/models/smollm2", adapter="/runs/lora")`` — a model folder with ``config.json``,
    safetensors weights, a tokenizer and a chat template; no hub access."""

    kind = "transformers"

    def __init__(self, model: str | Path, *, adapter: str | Path | None = None, device: str = "auto",
                 dtype: str = "auto", batch_size: int = 32, name: str | None = None, threads: int | None = None,
                 kv_reuse: bool = True):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        self.model_path = _model_folder(model)
        self.adapter_path = _adapter_folder(adapter) if adapter is not None else None
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        if dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.device = resolve_device(device)
        if dtype == "float16" and self.device.type == "cpu":
            raise InputError("dtype float16 is not supported on CPU (slow and numerically unreliable); "
                             "use auto (the default), float32 or bfloat16")
        if dtype == "auto":
            dtype = "bfloat16" if native_bfloat16(self.device) else "float32"
        self.dtype = dtype
        self.kind = f"transformers-{dtype}"
        self.batch_size = batch_size
        self.kv_reuse = kv_reuse  # False: every prompt is computed from scratch (sessions are ignored)
        if threads is not None:
            if threads < 1:
                raise InputError(f"threads must be at least 1, got {threads}", field="threads")
            torch.set_num_threads(threads)

        tokenizer = AutoTokenizer.from_pretrained(self.model_path, padding_side="left", local_files_only=True)
        if not tokenizer.chat_template:
            raise InputError(f"{self.model_path} has no chat template (tokenizer_config.json / chat_template.jinja)")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer

        from .decoding import register_attention

        loaded = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=getattr(torch, dtype),
                                                      attn_implementation=register_attention(),
                                                      local_files_only=True)
        self.eos_token_ids = _eos_token_ids(tokenizer, loaded.generation_config)
        loaded.generation_config = GenerationConfig(bos_token_id=loaded.generation_config.bos_token_id,
                                                    eos_token_id=self.eos_token_ids,
                                                    pad_token_id=tokenizer.pad_token_id)
        if self.adapter_path is not None:
            from peft import PeftModel

            with warnings.catch_warnings():  # peft 0.21 calls a method transformers 5 deprecates; not ours to fix
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
                loaded = PeftModel.from_pretrained(loaded, self.adapter_path)
        self.model = loaded.to(self.device).eval()
        from .decoding import Decoder

        self.decoder = Decoder(self.model, self.tokenizer, self.eos_token_ids, self.device)

        self.name = name or f"hf:{self.model_path.name}" + (
            f"+adapter:{self.adapter_path.name}" if self.adapter_path is not None else "")

    @cached_property
    def model_sha256(self) -> str:
        """SHA-256 of the model's ``*.safetensors`` files, read in name order as one stream (for a
        single-file model, the file's own ``sha256sum``)."""
        return weights_sha256(self.model_path)

    @cached_property
    def adapter_sha256(self) -> str | None:
        return weights_sha256(self.adapter_path) if self.adapter_path is not None else None

    def generate(self, conversations: Sequence[Sequence[Message]], params: SamplingParams,
                 schemas: Sequence[dict | None] | None = None,
                 sessions: Sequence[Hashable | None] | None = None) -> list[Generation]:
        """One generation per conversation, in input order. ``schemas`` (a JSON schema per conversation, or None)
        constrain decoding; ``sessions`` (a key per conversation, e.g. one per live episode, or None) keep each
        conversation's keys/values for its next, longer prompt. A batch that fails on the device (out of
        memory…) yields failed ``Generation``s for its conversations; a malformed conversation is a
        ``ValueError`` before anything runs."""
        import torch

        n = len(conversations)
        schemas = list(schemas) if schemas is not None else [None] * n
        sessions = list(sessions) if sessions is not None and self.kv_reuse else [None] * n
        if len(schemas) != n or len(sessions) != n:
            raise ValueError(f"{n} conversations but {len(schemas)} schemas and {len(sessions)} sessions")
        prompts = [self._prompt(index, conversation) for index, conversation in enumerate(conversations)]
        # The chat template already writes any BOS token: add_special_tokens=False avoids a second one.
        token_ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
        order = sorted(range(n), key=lambda index: len(token_ids[index]))
        results: list[Generation | None] = [None] * n
        generator = None if params.greedy else torch.Generator(device=self.device).manual_seed(params.seed)
        self.decoder.start_call()
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            try:
                generations = self.decoder.generate([token_ids[i] for i in chunk], params,
                                                    [schemas[i] for i in chunk], [sessions[i] for i in chunk],
                                                    generator)
            except RuntimeError as error:  # CUDA out-of-memory and other device failures
                generations = [self._failed(error, len(chunk))] * len(chunk)
            for index, generation in zip(chunk, generations, strict=True):
                results[index] = generation
        self.decoder.end_call()
        return results  # type: ignore[return-value]  # every slot is filled

    def _prompt(self, index: int, conversation: Sequence[Message]) -> str:
        if isinstance(conversation, (str, bytes)) or not isinstance(conversation, Sequence) or not all(
                isinstance(message, dict) and "role" in message and "content" in message for message in conversation):
            raise ValueError(f"conversation {index} must be a list of {{'role': …, 'content': …}} messages, "
                             f"got {type(conversation).__name__}")
        return self.tokenizer.apply_chat_template(list(conversation), add_generation_prompt=True, tokenize=False)

    def _failed(self, error: RuntimeError, size: int) -> Generation:
        import torch

        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return Generation(None, error=f"{self.name} failed on a batch of {size} on {self.device}: "
                                      f"{type(error).__name__}: {reason}")


def resolve_device(device: str) -> Any:
    """``auto`` (CUDA when there is one), ``cpu``, ``cuda`` or ``cuda:N`` → a torch device."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise InputError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N") from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for but CUDA is not available; use auto or cpu")
    return chosen


def _model_folder(model: str | Path) -> Path:
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise InputError(f"model folder {folder} does not exist (a local folder is needed; nothing is downloaded)")
    if not (folder / "config.json").is_file():
        raise InputError(f"model folder {folder} has no config.json; expected a Hugging Face model folder")
    return folder


def _adapter_folder(adapter: str | Path) -> Path:
    folder = Path(adapter).expanduser()
    if not folder.is_dir():
        raise InputError(f"adapter folder {folder} does not exist")
    if not (folder / "adapter_config.json").is_file():
        raise InputError(f"adapter folder {folder} has no adapter_config.json; expected a PEFT adapter folder")
    return folder


def _eos_token_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    """The tokenizer's EOS plus any the checkpoint's generation config adds (chat models often end a turn
    with a token other than the tokenizer's EOS)."""
    configured = generation_config.eos_token_id
    configured = [] if configured is None else [configured] if isinstance(configured, int) else list(configured)
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids += [token for token in configured if token not in ids]
    if not ids:
        raise InputError("the model defines no end-of-sequence token (tokenizer or generation_config.json)")
    return ids

