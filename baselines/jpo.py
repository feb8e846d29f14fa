"""Judge Policy Optimization: offline PPO-style refinement of the SFT adapter on logged
(prompt, response, judge-derived advantage) triples (DESIGN.md section 8).

For a response y to prompt x with advantage A (the judge score standardised within its scenario):

    r      = exp(Σ_t log π_θ(y_t | x, y_<t) − Σ_t log π_ref(y_t | x, y_<t))     (sequence ratio)
    L_clip = −min(r·A, clip(r, 1 − ε, 1 + ε)·A)
    KL_k3  = mean_t [exp(δ_t) − δ_t − 1],  δ_t = log π_ref − log π_θ            (Schulman's k3)
    L      = L_clip + β·KL_k3,   ε 0.2, β 0.04

π_ref is a frozen copy of the SFT adapter and π_θ starts from it. Because the data are logged and the
reference never changes, its token log-probabilities are computed once before training. The loss is a
``transformers.Trainer`` subclass (TRL 1.16 has no PPO trainer), so checkpoints, resuming, devices,
logging and ``accelerate launch`` come from the trainer, not from this module.

With ``eval_steps`` > 0 the number of steps is chosen on validation: the same objective L is measured on a
seeded sample of the release's ``validation`` turns (``eval_examples``, with their own reference log-probs) before
training (step 0: the SFT adapter itself) and every ``eval_steps`` steps, and the adapter of the step with the
lowest validation L is kept (``chosen_step``, ``validation_losses`` in ``training.json``). L on logged turns is
an importance-weighted estimate of how much the refined policy prefers the better-judged responses, so step 0
(−mean A, no KL) is a real candidate: where no step beats it, the SFT adapter is kept unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emoneg_bench.errors import InputError

from .data import jpo_selection
from .training import (
    ADAPTER,
    CHECKPOINTS,
    last_checkpoint,
    load_base,
    losses,
    precision_args,
    read_metadata,
    sampling_args,
    validation_choice,
    write_metadata,
)


@dataclass(frozen=True)
class JPOSettings:
    epsilon: float = 0.2
    beta: float = 0.04
    learning_rate: float = 1e-5
    batch_size: int = 4
    gradient_accumulation: int = 1
    epochs: float = 1.0
    max_steps: int = -1
    max_examples: int | None = None  # a seeded subsample of the logged turns (CPU runs)
    max_length: int = 2048  # long transcripts reach ~1,400 tokens; cut responses are dropped
    save_steps: int = 50
    logging_steps: int = 5
    seed: int = 0
    group_by_length: bool = True  # batches of similar length (see training.sampling_args)
    eval_steps: int = 0  # > 0: measure L on validation at step 0 and every eval_steps steps; keep the best step
    eval_examples: int = 64  # validation turns L is measured on (a seeded sample)


def jpo_loss(logps, ref_logps, mask, advantages, epsilon: float, beta: float):
    """The JPO objective for a batch of sequences (token log-probs ``[B, T]``, response ``mask``, ``[B]``
    advantages); returns (loss, statistics)."""
    import torch

    mask = mask.to(logps.dtype)
    ratio = torch.exp(((logps - ref_logps) * mask).sum(-1))
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + epsilon)
    policy = -torch.minimum(ratio * advantages, clipped * advantages)
    delta = ref_logps - logps
    kl = ((torch.exp(delta) - delta - 1) * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    loss = (policy + beta * kl).mean()
    stats = {"kl": kl.mean().detach(), "ratio": ratio.mean().detach(),
             "clip_fraction": ((ratio - clipped).abs() > 0).float().mean().detach()}
    return loss, stats


def token_logps(model, input_ids, attention_mask, keep: int):
    """log π(token_t | tokens_<t) of the last ``keep`` tokens of each row, shape ``[B, keep]``. Rows are
    left-padded (see ``collate``), so every response lies in that window and the vocabulary-wide logits
    are only formed there: ``[B, keep, V]``, not ``[B, T, V]`` (gigabytes for long transcripts)."""
    import torch

    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # as if unpadded
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                   logits_to_keep=keep + 1).logits[:, :-1].float()
    return torch.gather(torch.log_softmax(logits, -1), 2, input_ids[:, -keep:, None]).squeeze(-1)


def response_window(completion_mask) -> int:
    """How many trailing positions of a left-padded batch hold every row's response."""
    return completion_mask.shape[1] - int(completion_mask.any(0).float().argmax())


def _trainer_class():
    import torch
    from transformers import Trainer

    class JPOTrainer(Trainer):
        """``transformers.Trainer`` with the JPO loss; batches carry ``completion_mask``, ``ref_logps``
        and ``advantage`` next to the token ids."""

        def __init__(self, *args, epsilon: float, beta: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.epsilon, self.beta = epsilon, beta
            self._stats: dict[str, list[float]] = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            keep = inputs["ref_logps"].shape[1]
            logps = token_logps(model, inputs["input_ids"], inputs["attention_mask"], keep)
            loss, stats = jpo_loss(logps, inputs["ref_logps"], inputs["completion_mask"][:, -keep:],
                                   inputs["advantage"], self.epsilon, self.beta)
            if model.training:  # evaluation batches do not enter the training log's statistics
                for key, value in stats.items():
                    self._stats.setdefault(key, []).append(float(value))
            return (loss, {}) if return_outputs else loss

        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            if "loss" in logs:
                logs |= {key: sum(v) / len(v) for key, v in self._stats.items() if v}
                self._stats.clear()
            super().log(logs, *args, **kwargs)

    def collate(pad_id: int):
        """Left-padded batches: responses end each row, so they share the batch's last columns."""
        def collate_batch(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
            width = max(len(f["input_ids"]) for f in features)

            def pad(key, value, dtype, to=width):
                return torch.tensor([[value] * (to - len(f[key])) + f[key] for f in features], dtype=dtype)

            batch = {"input_ids": pad("input_ids", pad_id, torch.long),
                     "attention_mask": pad("attention_mask", 0, torch.long),
                     "completion_mask": pad("completion_mask", 0, torch.long),
                     "advantage": torch.tensor([f["advantage"] for f in features], dtype=torch.float32)}
            if "ref_logps" in features[0]:  # each row's values for its own trailing tokens
                batch["ref_logps"] = pad("ref_logps", 0.0, torch.float32, response_window(batch["completion_mask"]))
            return batch
        return collate_batch

    return JPOTrainer, collate


def tokenize(examples: list[dict], tokenizer, max_length: int) -> list[dict]:
    """Chat-template token ids with the mask of the response the ratio is over: the last assistant turn (the
    logged move; earlier assistant turns are the transcript it answered)."""
    rows = []
    for example in examples:
        ids, mask = response_mask(tokenizer, example["messages"])
        ids, mask = ids[:max_length], mask[:max_length]
        if sum(mask) == 0:
            continue  # the response was cut off entirely by max_length
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "completion_mask": mask,
                     "advantage": example["advantage"]})
    return rows


def response_mask(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of the whole conversation and a mask that is 1 on the final assistant message's tokens."""
    prompt = list(tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"])
    ids = list(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
    if ids[: len(prompt)] != prompt:
        raise InputError("the model's chat template renders a conversation's prompt differently from the start of "
                         "the whole conversation, so the response cannot be told apart", field="model")
    return ids, [0] * len(prompt) + [1] * (len(ids) - len(prompt))


def disable_dropout(model) -> None:
    """Dropout off, as in TRL's RL trainers: with it the policy differs from the reference at step 0."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def reference_logps(model, rows: list[dict], collate_batch, batch_size: int) -> None:
    """Fill ``ref_logps`` into ``rows``: the frozen SFT policy's log-probs of each row's tokens from its
    first response token to its end."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    by_length = sorted(rows, key=lambda row: len(row["input_ids"]))  # less padding; each row's values are its own
    with torch.no_grad():
        for start in range(0, len(by_length), batch_size):
            chunk = by_length[start: start + batch_size]
            batch = collate_batch(chunk)
            keep = response_window(batch["completion_mask"])
            logps = token_logps(model, batch["input_ids"].to(device), batch["attention_mask"].to(device), keep)
            for row, values in zip(chunk, logps.float().cpu()):
                tail = len(row["input_ids"]) - row["completion_mask"].index(1)
                row["ref_logps"] = values[keep - tail:].tolist()


def train_jpo(release: str | Path, sft: str | Path, out: str | Path, *, domain: str = "all", role: str = "focal",
              settings: JPOSettings = JPOSettings(), progress: bool = True) -> dict:
    """Refine the SFT run in ``sft`` into ``out/adapter``; resumes from ``out/checkpoints``."""
    from datasets import Dataset
    from peft import PeftModel
    from transformers import TrainingArguments

    out, sft = Path(out), Path(sft)
    sft_run = read_metadata(sft)
    if sft_run.get("kind") != "sft":
        raise InputError(f"{sft} is a {sft_run.get('kind')!r} run; JPO starts from an emotion-conditioned SFT run",
                         field="sft")
    base = Path(sft_run["base_model"])
    if sft_run.get("role", "focal") != role:
        raise InputError(f"{sft} was trained for the {sft_run.get('role')} role, not {role}", field="sft")
    selection = jpo_selection(release, domain=domain, max_examples=settings.max_examples, seed=settings.seed,
                              role=role)
    model, tokenizer = load_base(base)
    model = PeftModel.from_pretrained(model, sft / ADAPTER, is_trainable=True)
    disable_dropout(model)
    JPOTrainer, collate = _trainer_class()
    collate_batch = collate(tokenizer.pad_token_id)
    rows = tokenize(selection.rows, tokenizer, settings.max_length)
    reference_logps(model, rows, collate_batch, settings.batch_size)
    evaluation, eval_args = None, {}
    if settings.eval_steps > 0:
        held = jpo_selection(release, domain=domain, max_examples=settings.eval_examples, seed=settings.seed,
                             role=role, split="validation")
        held_rows = tokenize(held.rows, tokenizer, settings.max_length)
        reference_logps(model, held_rows, collate_batch, settings.batch_size)
        evaluation = Dataset.from_list(held_rows)
        # label_names: the trainer computes the loss on evaluation batches only when they carry "labels"
        eval_args = dict(eval_strategy="steps", eval_steps=settings.eval_steps, eval_on_start=True,
                         load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                         per_device_eval_batch_size=settings.batch_size, label_names=["advantage"])
    args = TrainingArguments(
        output_dir=str(out / CHECKPOINTS), per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation, learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs, max_steps=settings.max_steps, lr_scheduler_type="constant",
        logging_steps=settings.logging_steps, save_steps=settings.eval_steps or settings.save_steps,
        save_total_limit=2, seed=settings.seed, data_seed=settings.seed, report_to=[], disable_tqdm=not progress,
        remove_unused_columns=False, dataloader_num_workers=0, **eval_args, **sampling_args(settings.group_by_length),
        **precision_args())
    trainer = JPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate_batch,
                         eval_dataset=evaluation, epsilon=settings.epsilon, beta=settings.beta)
    trainer.train(resume_from_checkpoint=last_checkpoint(out))
    chosen = validation_choice(trainer.state.log_history, len(evaluation)) if settings.eval_steps > 0 else {}
    if chosen and chosen["chosen_step"] == 0:  # no step beat the SFT adapter on validation: keep it unchanged
        _copy_adapter(sft / ADAPTER, out / ADAPTER)
    else:
        trainer.model.save_pretrained(out / ADAPTER)
        tokenizer.save_pretrained(out / ADAPTER)
    return write_metadata(out, "jpo", release, base, settings, trainer.state.log_history, domain=domain, role=role,
                          sft_run=str(sft), sft_adapter_sha256=sft_run["adapter_sha256"], examples=len(rows),
                          tokens=sum(len(r["input_ids"]) for r in rows),
                          available=selection.available, advantage_source=selection.advantage_source,
                          steps=trainer.state.global_step, losses=losses(trainer.state.log_history), **chosen)


def _copy_adapter(source: Path, target: Path) -> None:
    import shutil

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
