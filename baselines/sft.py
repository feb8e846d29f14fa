"""LoRA supervised fine-tuning of the expression model with TRL's ``SFTTrainer`` + PEFT.

The examples are the release's top-K% focal turns by advantage (:func:`baselines.data.sft_selection`),
as the same chat messages the negotiator is prompted with; the loss is on the assistant turn only
(the model's chat template marks it with ``{% generation %}``). ``emotion=False`` trains the
emotion-free ablation on the same turns with the emotion instruction removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emoneg_bench.errors import InputError

from .data import sft_selection
from .training import (
    ADAPTER,
    CHECKPOINTS,
    LoraShape,
    last_checkpoint,
    load_base,
    losses,
    model_folder,
    precision_args,
    write_metadata,
)


@dataclass(frozen=True)
class SFTSettings:
    top_k: float = 0.10
    learning_rate: float = 2e-4
    batch_size: int = 4
    gradient_accumulation: int = 1
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs (CPU runs train a fixed number of steps)
    max_length: int = 2048  # long transcripts reach ~1,400 tokens; cut responses are dropped
    warmup_ratio: float = 0.03
    save_steps: int = 50
    logging_steps: int = 5
    seed: int = 0
    lora: LoraShape = LoraShape()


def train_sft(release: str | Path, out: str | Path, *, model: str = "smollm2", iql: str | Path | None = None,
              domain: str = "all", emotion: bool = True, role: str = "focal", settings: SFTSettings = SFTSettings(),
              progress: bool = True, callbacks: list | None = None) -> dict:
    """Train a LoRA adapter into ``out/adapter``; resumes from ``out/checkpoints`` when a run was cut off.
    Returns the run's metadata (also written to ``out/training.json``). ``callbacks`` are
    ``transformers.TrainerCallback``s."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    out = Path(out)
    base = model_folder(model)
    selection = sft_selection(release, domain=domain, top_k=settings.top_k, iql=iql, emotion=emotion, role=role)
    dataset = Dataset.from_list([{"messages": r["messages"]} for r in selection.rows])
    model_, tokenizer = load_base(base)
    if "generation" not in (tokenizer.chat_template or ""):
        raise InputError(f"model {base}'s chat template has no {{% generation %}} markers, so the loss cannot be "
                         f"put on the assistant turn only; use `smollm2` or add the markers", field="model")
    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS), assistant_only_loss=True, max_length=settings.max_length,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate, num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        warmup_steps=settings.warmup_ratio, lr_scheduler_type="cosine", logging_steps=settings.logging_steps,
        save_steps=settings.save_steps, save_total_limit=2, seed=settings.seed, data_seed=settings.seed,
        report_to=[], disable_tqdm=not progress, dataloader_num_workers=0, **precision_args())
    trainer = SFTTrainer(model=model_, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=settings.lora.peft_config(), callbacks=callbacks)
    trainer.train(resume_from_checkpoint=last_checkpoint(out))
    trainer.model.save_pretrained(out / ADAPTER)
    tokenizer.save_pretrained(out / ADAPTER)
    return write_metadata(out, "sft" if emotion else "emotion-free-sft", release, base, settings,
                          trainer.state.log_history, domain=domain, role=role, emotion=emotion, examples=len(dataset),
                          available=selection.available, advantage_source=selection.advantage_source,
                          steps=trainer.state.global_step, losses=losses(trainer.state.log_history))
