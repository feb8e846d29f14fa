"""Trained emotion selectors at inference time, in numpy only (no torch): the IQL selector and the
behaviour-cloning comparator, read from ``<kind>.safetensors`` + ``<kind>.json``.

A selector is an emotion schedule: an agent asks :meth:`MLPSelector.choose_in` for the emotion of each
turn, and the selector computes the live state (``emoneg_bench.features``) from the transcript. Policy
extraction samples from ``softmax(logits / temperature)`` with the episode's own emotion stream (seeded
per task, so an evaluation reproduces); temperature 0 is the argmax. The temperature is chosen on the
``validation`` split and recorded in the JSON file under ``extraction``; without a recorded choice it is
1 (sampling from the policy as it was trained, as the reference implementation evaluates).

The IQL selector can also fall back to a baseline emotion (``extraction.fallback``: the best fixed emotion on
validation and a margin): it shows the policy's pick only where its own critic rates that pick more than
``margin`` above the baseline, ``Q(s, pick) − Q(s, baseline) > margin``, and the baseline otherwise. This is
safe policy improvement over a known-good policy (as in SPIBB, Laroche et al. 2019): off the data's support
the actor's pick is extrapolation, and the critic's comparison keeps a deviation only where it claims a gain.
Whether to fall back, and the margin, are chosen on validation with the temperature (``docs/selector.md``).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

from emoneg_bench.agents.teacher import EmotionSchedule
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.engine import TurnContext
from emoneg_bench.errors import InputError
from emoneg_bench.features import STATE_DIM, STATE_FEATURES, state_vector
from emoneg_bench.limits import read_json

DEFAULT_TEMPERATURE = 1.0
# kind → (weights file, metadata file, format, the networks it must hold)
KINDS = {
    "iql": ("iql.safetensors", "iql.json", "emoneg-iql/2", ("q1", "q2", "value", "policy")),
    "bc": ("bc.safetensors", "bc.json", "emoneg-bc/1", ("policy",)),
}


def sample_index(probabilities: np.ndarray, rng: random.Random) -> int:
    """One draw from a categorical distribution with a ``random.Random`` (one ``random()`` per draw)."""
    cumulative = np.cumsum(probabilities, dtype=np.float64)
    return min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(cumulative) - 1)


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` along the last axis, computed stably (temperature > 0)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=-1, keepdims=True)


class MLPSelector(EmotionSchedule):
    """An exported policy network (``policy.{weight,bias}.{layer}``, weights (in, out), ReLU between layers)
    over the toolkit's state, with CORL's state normalisation (``state_mean``/``state_std``) when present."""

    kind = "iql"

    def __init__(self, weights: dict[str, np.ndarray], metadata: dict, temperature: float | None = None,
                 fallback: dict | None | str = "recorded"):
        self.weights, self.metadata = weights, metadata
        extraction = metadata.get("extraction", {})
        recorded = extraction.get("temperature", DEFAULT_TEMPERATURE)
        self.temperature = float(recorded if temperature is None else temperature)
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise InputError(f"temperature must be a number >= 0, got {self.temperature}", field="temperature")
        self.fallback = _check_fallback(extraction.get("fallback") if fallback == "recorded" else fallback)
        if self.fallback is not None and "q1.weight.0" not in weights:
            raise InputError("a fallback needs the critic; this selector has none", field="extraction.fallback")

    @property
    def name(self) -> str:
        return self.kind

    @property
    def extraction_tag(self) -> str:
        """How emotions are extracted, for provenance: ``T`` or ``T+emotion>margin``."""
        tag = f"{self.temperature:g}"
        if self.fallback is not None:
            tag += f"+{self.fallback['emotion']}>{self.fallback['margin']:g}"
        return tag

    @classmethod
    def load(cls, folder: str | Path, temperature: float | None = None, fallback: dict | None | str = "recorded"):
        from safetensors.numpy import load_file

        folder = Path(folder)
        model, meta, fmt, networks = KINDS[cls.kind]
        if not (folder / meta).is_file() or not (folder / model).is_file():
            raise InputError(f"not a trained {cls.kind} selector: it has no {meta} and {model} (train one with "
                             f"`emoneg train {cls.kind}`)", file=str(folder))
        metadata = read_json(folder / meta, "run metadata")
        if metadata.get("format") != fmt:
            raise InputError(f"written in format {metadata.get('format')!r}, this toolkit reads {fmt!r}; retrain it",
                             file=str(folder / meta), field="format")
        if metadata.get("state_features") != list(STATE_FEATURES) or metadata.get("actions") != list(GOEMOTIONS):
            raise InputError("trained on a different state or action layout than this toolkit's; retrain it",
                             file=str(folder / meta), field="state_features")
        weights = load_file(folder / model)
        missing = [f"{name}.weight.0" for name in networks if f"{name}.weight.0" not in weights]
        if missing:
            raise InputError(f"has no {', '.join(missing)}; it was written by another version of the trainer, "
                             "retrain it", file=str(folder / model))
        return cls(weights, metadata, temperature, fallback)

    def _forward(self, network: str, states) -> np.ndarray:
        """(n, out) outputs of one exported network."""
        x = np.asarray(states, dtype=np.float32).reshape(-1, STATE_DIM)
        if "state_mean" in self.weights:
            x = (x - self.weights["state_mean"]) / self.weights["state_std"]
        layers = sum(1 for key in self.weights if key.startswith(f"{network}.weight."))
        for i in range(layers):
            x = x @ self.weights[f"{network}.weight.{i}"] + self.weights[f"{network}.bias.{i}"]
            if i < layers - 1:
                x = np.maximum(x, 0)
        return x

    def policy_logits(self, states) -> np.ndarray:
        """π's logits over the 28 emotions, shape (n, 28)."""
        return self._forward("policy", states)

    def probabilities(self, states, temperature: float | None = None) -> np.ndarray:
        """The extraction distribution ``softmax(logits / T)``; one-hot on the argmax at T = 0."""
        temperature = self.temperature if temperature is None else temperature
        logits = self.policy_logits(states)
        if temperature == 0:
            return np.eye(len(GOEMOTIONS))[logits.argmax(axis=1)]
        return softmax(logits, temperature)

    def extraction_probabilities(self, states) -> np.ndarray:
        """What is shown, per state: the extraction distribution with the fallback applied (the mass of every
        pick the critic does not rate above the baseline by more than the margin moves to the baseline)."""
        probabilities = self.probabilities(states)
        if self.fallback is None:
            return probabilities
        q = self._critic(states)
        baseline = GOEMOTIONS.index(self.fallback["emotion"])
        falls = q - q[:, baseline:baseline + 1] <= self.fallback["margin"]
        moved = (probabilities * falls).sum(axis=1)
        probabilities = np.where(falls, 0.0, probabilities)
        probabilities[:, baseline] += moved
        return probabilities

    def choose_emotions(self, states) -> list[str]:
        """The actor's most likely emotion in each state (argmax of π, before any fallback; what is shown at T = 0
        is the argmax of :meth:`extraction_probabilities`)."""
        return [GOEMOTIONS[i] for i in self.policy_logits(states).argmax(axis=1)]

    def _critic(self, states) -> np.ndarray:
        """min(Q̄₁, Q̄₂)(s, ·), shape (n, 28)."""
        return np.minimum(self._forward("q1", states), self._forward("q2", states))

    def choose_in(self, context: TurnContext, turn_index: int, rng: random.Random) -> str:
        state = state_vector(context.history, context.role, context.task.scenario, context.max_turns)
        shown = self.extraction_probabilities(state)[0]
        return GOEMOTIONS[int(shown.argmax()) if self.temperature == 0 else sample_index(shown, rng)]


class IQLSelector(MLPSelector):
    """The IQL selector: its policy, the target critic ``q1``/``q2`` and the value ``V``."""

    kind = "iql"

    def q_values(self, states) -> np.ndarray:
        """min(Q̄₁, Q̄₂)(s, ·), shape (n, 28)."""
        return self._critic(states)

    def values(self, states) -> np.ndarray:
        """V(s), shape (n,)."""
        return self._forward("value", states)[:, 0]

    def advantages(self, states, actions) -> np.ndarray:
        """min(Q̄₁, Q̄₂)(s, a) − V(s) for emotion indices (or names) ``actions``, shape (n,)."""
        actions = np.array([GOEMOTIONS.index(a) if isinstance(a, str) else int(a) for a in np.ravel(actions)])
        q = self.q_values(states)
        return q[np.arange(len(q)), actions] - self.values(states)


class BCSelector(MLPSelector):
    """Behaviour cloning of the emotions of the top episodes (``bc-top``): the IQL actor's network, fit by
    cross-entropy."""

    kind = "bc"


def load_selector(folder: str | Path, temperature: float | None = None,
                  fallback: dict | None | str = "recorded") -> MLPSelector:
    """Whichever selector ``folder`` holds (IQL or behaviour cloning)."""
    folder = Path(folder)
    if (folder / KINDS["bc"][1]).is_file():
        return BCSelector.load(folder, temperature, fallback)
    return IQLSelector.load(folder, temperature, fallback)


def _check_fallback(fallback) -> dict | None:
    if fallback is None:
        return None
    emotion, margin = (fallback.get("emotion"), fallback.get("margin")) if isinstance(fallback, dict) else (None, None)
    if (emotion not in GOEMOTIONS or isinstance(margin, bool) or not isinstance(margin, (int, float))
            or not math.isfinite(margin)):
        raise InputError(f"expected {{emotion: one of the 28 emotions, margin: a number}}, got {fallback!r}",
                         field="extraction.fallback")
    return {"emotion": emotion, "margin": float(margin)}
