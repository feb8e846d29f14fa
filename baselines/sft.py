"""LoRA supervised fine-tuning of the expression model with TRL's ``SFTTrainer`` + PEFT.

The examples are the release's top-K% focal turns by advantage (:func:`baselines.data.sft_selection`),
as the same chat messages the negotiator is prompted with, given to TRL as prompt–completion pairs so the
loss is on the logged move only (the final assistant turn; earlier ones are transcript). ``emotion=False`` trains the
emotion-free ablation on the same turns with the emotion instruction removed.

With ``eval_steps`` > 0 the number of steps is chosen on validation: every ``eval_steps`` steps the adapter's loss
on the same top-K% selection of the release's ``validation`` split (``eval_examples`` of them, a seeded sample) is
measured, and the adapter of the step with the lowest validation loss is kept (``chosen_step`` and
``validation_losses`` in ``training.json``); the test splits are never read.

The loss forms vocabulary logits only where a label is (:func:`trainer_class`): one focal turn of ~60
tokens per transcript of ~570, where TRL's fused head on a CPU scores every position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    sampling_args,
    validation_choice,
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
    group_by_length: bool = True  # batches of similar length: ~1.5× less padding at batch 4 (see sampling_args)
    eval_steps: int = 0  # > 0: measure the validation loss every eval_steps steps and keep the best step's adapter
    eval_examples: int = 64  # validation turns the loss is measured on (a seeded sample of the top-K% selection)
    lora: LoraShape = LoraShape()


def train_sft(release: str | Path, out: str | Path, *, model: str = "smollm2", iql: str | Path | None = None,
              domain: str = "all", emotion: bool = True, role: str = "focal", settings: SFTSettings = SFTSettings(),
              progress: bool = True, callbacks: list | None = None) -> dict:
    """Train a LoRA adapter into ``out/adapter``; resumes from ``out/checkpoints`` when a run was cut off.
    Returns the run's metadata (also written to ``out/training.json``). ``callbacks`` are
    ``transformers.TrainerCallback``s."""
    out = Path(out)
    trainer, selection, base = sft_trainer(release, out, model=model, iql=iql, domain=domain, emotion=emotion,
                                           role=role, settings=settings, progress=progress, callbacks=callbacks)
    trainer.train(resume_from_checkpoint=last_checkpoint(out))
    trainer.model.save_pretrained(out / ADAPTER)
    trainer.processing_class.save_pretrained(out / ADAPTER)
    chosen = validation_choice(trainer.state.log_history, len(trainer.eval_dataset)) if settings.eval_steps > 0 else {}
    return write_metadata(out, "sft" if emotion else "emotion-free-sft", release, base, settings,
                          trainer.state.log_history, domain=domain, role=role, emotion=emotion,
                          examples=len(selection.rows), available=selection.available,
                          advantage_source=selection.advantage_source, steps=trainer.state.global_step,
                          losses=losses(trainer.state.log_history), **chosen)


def sft_trainer(release: str | Path, out: Path, *, model: str, iql: str | Path | None, domain: str, emotion: bool,
                role: str, settings: SFTSettings, progress: bool, callbacks: list | None):
    """The configured trainer of :func:`train_sft` (not yet trained), the turns it trains on and the base
    model's folder."""
    from datasets import Dataset
    from trl import SFTConfig

    base = model_folder(model)
    selection = sft_selection(release, domain=domain, top_k=settings.top_k, iql=iql, emotion=emotion, role=role)
    # prompt-completion rows: the loss is on the logged move only, not on earlier assistant turns of the transcript
    def pairs(rows: list[dict]):
        return Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])

    dataset = pairs(selection.rows)
    evaluation, eval_args = None, {}
    if settings.eval_steps > 0:
        import random

        held = sft_selection(release, domain=domain, top_k=settings.top_k, iql=iql, emotion=emotion, role=role,
                             split="validation").rows
        held = random.Random(settings.seed).sample(held, min(settings.eval_examples, len(held)))
        evaluation = pairs(held)
        # the best step's checkpoint must exist: checkpoints every eval_steps, the best one reloaded at the end
        eval_args = dict(eval_strategy="steps", eval_steps=settings.eval_steps, load_best_model_at_end=True,
                         metric_for_best_model="eval_loss", greater_is_better=False,
                         per_device_eval_batch_size=settings.batch_size)
    model_, tokenizer = load_base(base)
    args = SFTConfig(
        output_dir=str(out / CHECKPOINTS), completion_only_loss=True, max_length=settings.max_length,
        per_device_train_batch_size=settings.batch_size, gradient_accumulation_steps=settings.gradient_accumulation,
        learning_rate=settings.learning_rate, num_train_epochs=settings.epochs, max_steps=settings.max_steps,
        warmup_steps=settings.warmup_ratio, lr_scheduler_type="cosine", logging_steps=settings.logging_steps,
        save_steps=settings.eval_steps or settings.save_steps, save_total_limit=2, seed=settings.seed,
        data_seed=settings.seed, **eval_args,
        report_to=[], disable_tqdm=not progress, dataloader_num_workers=0,
        dataset_num_proc=tokenizing_processes(len(dataset)), **sampling_args(settings.group_by_length),
        **precision_args())
    trainer = trainer_class()(model=model_, args=args, train_dataset=dataset, eval_dataset=evaluation,
                              processing_class=tokenizer, peft_config=settings.lora.peft_config(), callbacks=callbacks)
    return trainer, selection, base


def tokenizing_processes(rows: int) -> int | None:
    """Processes for TRL's one-off tokenisation of the selected turns (one chat template per row, ~3.7 ms each
    here): one per core up to 8 for large selections (16,181 turns: 60.6 → 50.3 s on 2 cores, the same
    tokens), none below 2,000 rows, where starting the workers costs more than it saves."""
    cores = os.cpu_count() or 1
    return min(8, cores) if rows >= 2000 and cores > 1 else None


def trainer_class():
    """TRL's ``SFTTrainer`` whose loss projects to the vocabulary only at the positions that predict a label
    (their union over the batch, through the model's ``logits_to_keep``): the same objective — the mean
    negative log-likelihood of the assistant tokens — and the same logged entropy, token accuracy and token
    count. TRL's fused head scores every position on a CPU (prompt and padding too), ~9× the work here."""
    import torch
    from trl import SFTTrainer

    class LabelledPositionsSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"][:, 1:]
            keep = labels.ne(-100).any(0).nonzero().squeeze(1)  # position t is scored against token t + 1
            forward = {key: inputs[key] for key in ("input_ids", "attention_mask", "position_ids") if key in inputs}
            logits = model(**forward, use_cache=False, logits_to_keep=keep).logits.float()
            targets = labels[:, keep]
            valid = targets.ne(-100)
            logps = torch.log_softmax(logits, -1)
            target_logps = logps.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1).masked_fill(~valid, 0.0)
            count = valid.sum()
            loss = -target_logps.sum() / (count.clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
            self._record(logps.detach(), targets, valid, int(count), inputs)
            return (loss, {"loss": loss.detach()}) if return_outputs else loss  # evaluation needs the loss only

        def _record(self, logps, targets, valid, count: int, inputs) -> None:
            """The metrics TRL's own loss logs (``entropy``, ``mean_token_accuracy``, ``num_tokens``), into the
            store its ``log`` averages."""
            mode = "train" if self.model.training else "eval"
            entropy = -(logps.exp() * logps).sum(-1)
            correct = logps.argmax(-1).eq(targets) & valid  # log-softmax keeps the logits' order
            self._metrics[mode]["entropy"].append(float(entropy[valid].sum()) / count if count else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append(float(correct.sum()) / count if count else 0.0)
            if mode == "train":
                self._total_train_tokens += int(inputs["attention_mask"].sum())
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return LabelledPositionsSFTTrainer
