"""Choosing on ``validation``: play candidate emotion schedules, with the teacher's phrasing bank held fixed,
on a release's validation tasks and compare their own utility. Every setting of a selector (extraction
temperature, reward, β, expectile, the behaviour-cloning cut, the best fixed emotion) is chosen here and
nowhere else; the test splits are only ever evaluated afterwards, once.

Validation tasks are the release's ``validation`` tasks (validation scenarios, training personas). A reference
that must know a held-out persona (``persona-best-fixed``) is chosen on the validation *scenarios* played
against that persona, never on test scenarios.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoneg_bench.agents.teacher import EmotionSchedule
from emoneg_bench.errors import InputError
from emoneg_bench.negotiation import Role, Task
from emoneg_bench.outputs import write_json

TEMPERATURES = (0.0, 0.25, 0.5, 1.0)  # extraction temperatures tried on validation (0 = argmax)
HELD_OUT_SEEDS = 3  # seeds per (validation scenario, held-out persona) for the reference's choice


@dataclass(frozen=True)
class ValidationSet:
    """The tasks candidates are compared on, and how to play them."""

    release: Path
    tasks: tuple[Task, ...]
    max_turns: int
    role: str = "focal"

    @classmethod
    def of(cls, release: str | Path, domain: str = "all", role: str = "focal",
           personas: Sequence[str] | None = None) -> ValidationSet:
        """The release's validation tasks of ``domain``; with ``personas``, the validation scenarios played
        against exactly those personas (``HELD_OUT_SEEDS`` seeds each) instead."""
        from emoneg_bench.release import load_release_tasks, max_turns, open_release

        release = Path(release)
        manifest = open_release(release, ("tasks", "scenarios"))
        tasks = [t for t in load_release_tasks(release, "validation") if domain in ("all", t.scenario.domain)]
        if not tasks:
            raise InputError(f"release {release} has no validation tasks for domain {domain!r}; "
                             "settings are chosen on validation")
        if personas is not None:
            scenarios = list({t.scenario.scenario_id: t.scenario for t in tasks}.values())
            tasks = [Task(s, p, seed) for s in scenarios for p in personas for seed in range(HELD_OUT_SEEDS)]
        return cls(release, tuple(tasks), max_turns(manifest), role)

    def utilities(self, schedule: EmotionSchedule, recognizer=None) -> np.ndarray:
        """Own utility per task (task order) of the phrasing-bank teacher showing ``schedule``'s emotions in
        ``role`` against each task's persona."""
        from emoneg_bench.agents.personas import PersonaAgent
        from emoneg_bench.agents.teacher import TeacherAgent
        from emoneg_bench.engine import Engine
        from emoneg_bench.perception.recognizer import default_recognizer
        from emoneg_bench.rewards import own_utility

        role = Role(self.role)
        players = {role: TeacherAgent(schedule), role.other: PersonaAgent()}
        engine = Engine(recognizer or default_recognizer(), self.max_turns)
        episodes = engine.run(self.tasks, players[Role.FOCAL], players[Role.COUNTERPARTY])
        return np.array([own_utility(episode, role) for episode in episodes])

    def personas(self) -> np.ndarray:
        return np.array([t.persona for t in self.tasks])

    def domains(self) -> np.ndarray:
        return np.array([t.scenario.domain for t in self.tasks])


def choose_temperature(run: str | Path, load: Callable[..., EmotionSchedule], metadata_file: str,
                       validation: ValidationSet, temperatures: Sequence[float] = TEMPERATURES,
                       margins: Sequence[float] = ()) -> dict:
    """Evaluate a trained selector at each extraction temperature on ``validation`` and, with ``margins``
    (IQL only: it needs the critic), also with a fallback to the best fixed emotion on the same tasks at each
    margin; keep the best mean utility and record the choice in the run's metadata file under ``extraction``.
    Ties go to the lower temperature, then to no fallback, then to the larger margin. ``load(run, T,
    fallback)`` builds the selector. Returns the record."""
    run = Path(run)
    candidates = [(float(t), None) for t in temperatures]
    baseline = None
    if margins:
        baseline = best_fixed_emotion(validation)
        candidates += [(float(t), {"emotion": baseline[0], "margin": float(m)}) for t in temperatures for m in margins]
    scores = {}
    for t, fallback in candidates:
        scores[extraction_key(t, fallback)] = (float(validation.utilities(load(run, t, fallback)).mean()), t, fallback)
    key = max(scores, key=lambda k: (scores[k][0], -scores[k][1], scores[k][2] is None,
                                     scores[k][2]["margin"] if scores[k][2] else 0.0))
    _, best_t, best_fallback = scores[key]
    record = {"temperature": best_t, "fallback": best_fallback, "chosen": key, "chosen_on": "validation",
              "tasks": len(validation.tasks), "validation_utility": {k: round(v[0], 6) for k, v in scores.items()}}
    if baseline is not None:
        record["best_fixed_on_validation"] = {"emotion": baseline[0], "utility": round(baseline[1], 6)}
    path = run / metadata_file
    metadata = json.loads(path.read_text())
    metadata["extraction"] = record
    write_json(path, metadata)
    return record


def extraction_key(temperature: float, fallback: dict | None) -> str:
    """``0.25`` or ``0.25 fallback>0.04``: how a validation score of an extraction is keyed in the metadata."""
    return f"{temperature:g}" if fallback is None else f"{temperature:g} fallback>{fallback['margin']:g}"


def best_fixed_emotion(validation: ValidationSet, recognizer=None) -> tuple[str, float]:
    """The one emotion with the highest mean utility on ``validation`` when shown throughout (ties: GoEmotions
    order), and that utility."""
    from emoneg_bench.agents.teacher import FixedSchedule
    from emoneg_bench.emotions import GOEMOTIONS
    from emoneg_bench.perception.recognizer import default_recognizer

    recognizer = recognizer or default_recognizer()
    scores = {e: float(validation.utilities(FixedSchedule(e), recognizer).mean()) for e in GOEMOTIONS}
    best = best_emotion(scores)
    return best, scores[best]


def best_emotion(scores: dict[str, float]) -> str:
    """The emotion with the highest score; ties go to the one that comes first in GoEmotions order."""
    from emoneg_bench.emotions import GOEMOTIONS

    return max(GOEMOTIONS, key=lambda e: (scores[e], -GOEMOTIONS.index(e)))
