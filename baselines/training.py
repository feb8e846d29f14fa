"""What the LoRA trainers share: the base model, the device policy, the LoRA shape, resuming, and the
metadata written next to every trained adapter."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emoneg_bench import __version__
from emoneg_bench.errors import InputError
from emoneg_bench.hashing import weights_sha256
from emoneg_bench.limits import read_json
from emoneg_bench.release import release_manifest

ADAPTER, CHECKPOINTS, METADATA = "adapter", "checkpoints", "training.json"


@dataclass(frozen=True)
class LoraShape:
    """DESIGN.md section 8: r 16, α 32, dropout 0.05 on the attention projections."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), task_type="CAUSAL_LM")


def model_folder(spec: str) -> Path:
    """``smollm2`` (the bundled SLM, converted once) or a local model folder."""
    if spec == "smollm2":
        from emoneg_bench.backends.smollm2 import smollm2_folder

        return smollm2_folder()
    folder = Path(spec).expanduser()
    if not (folder / "config.json").is_file():
        raise InputError(f"model {spec!r} is neither 'smollm2' nor a model folder with config.json", field="model")
    return folder


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def mixed_precision() -> bool:
    """Train with bf16 autocast? On a GPU, and on a CPU that computes bfloat16 natively (AVX512-BF16, AMX):
    there it made a SmolLM2 LoRA-SFT step at batch 8 1.85x faster (22.7 vs 42.0 s, 2026-12-05). Elsewhere
    float32 (emulated bf16 is slower than float32)."""
    if on_gpu():
        return True
    import torch

    from emoneg_bench.backends.local import native_bfloat16

    return native_bfloat16(torch.device("cpu"))


def precision_args() -> dict[str, Any]:
    """bf16 autocast where :func:`mixed_precision` says so, else fp32 (TRL's defaults would ask for bf16
    everywhere). The master weights stay float32 on a CPU."""
    gpu = on_gpu()
    return {"bf16": mixed_precision(), "fp16": False, "use_cpu": not gpu, "gradient_checkpointing": False}


def sampling_args(group_by_length: bool) -> dict[str, Any]:
    """How the trainers draw batches. Grouped by length (the default), each batch holds examples of similar
    length from a seeded shuffle (transformers' ``LengthGroupedSampler``: mega-batches of up to 50 batches,
    sorted within), so little of a batch is padding: on the default release's SFT turns (mean 569 tokens,
    up to 1,433) random batches are 1.55× (batch 4) to 2.0× (batch 16) padding-inflated. Off: plain shuffle."""
    return {"train_sampling_strategy": "group_by_length" if group_by_length else "random"}


def last_checkpoint(out: Path) -> str | None:
    """The newest ``checkpoint-N`` folder of an interrupted run, for ``Trainer.train(resume_from_checkpoint=…)``."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def load_base(folder: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if on_gpu() else torch.float32)
    return model, tokenizer


def write_metadata(out: Path, kind: str, release: str | Path, base: Path, settings: Any, log_history: list[dict],
                   **extra: Any) -> dict:
    """``training.json``: what was trained on what, with which settings, and the loss curve."""
    manifest = release_manifest(release)
    metadata = {
        "kind": kind, "toolkit_version": __version__,
        "release": manifest.get("release"), "release_version": manifest.get("version"),
        "base_model": str(base), "base_model_sha256": weights_sha256(base),
        "adapter_sha256": weights_sha256(out / ADAPTER),
        "settings": asdict(settings), "precision": "bf16-autocast" if mixed_precision() else "fp32", **extra,
        "log_history": [{k: v for k, v in entry.items() if isinstance(v, (int, float, str))} for entry in log_history],
    }
    tmp = out / f".{METADATA}.tmp"
    tmp.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / METADATA)
    return metadata


def read_metadata(out: str | Path) -> dict:
    path = Path(out) / METADATA
    if not path.is_file():
        raise InputError(f"{out} is not a finished training run: it has no {METADATA}")
    return read_json(path, "run metadata")


def validation_choice(log_history: list[dict], examples: int) -> dict:
    """The step whose ``eval_loss`` was lowest (ties: the earlier step), every step's validation loss and the
    number of validation examples, as ``training.json`` records them."""
    history = [(int(e["step"]), float(e["eval_loss"])) for e in log_history if "eval_loss" in e]
    best = min(history, key=lambda item: (item[1], item[0]))
    return {"chosen_on": "validation", "chosen_step": best[0],
            "validation_losses": {str(step): round(loss, 6) for step, loss in history},
            "validation_examples": examples}


def losses(log_history: list[dict]) -> list[float]:
    return [entry["loss"] for entry in log_history if "loss" in entry]
