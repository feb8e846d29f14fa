"""What a build contains: the scenario splits, the tasks of every split, and the work units (one
Parquet shard each) the trajectory splits are cut into.

Everything here is a pure function of the config, so any machine can build any unit, and a unit's
bytes do not depend on which other units were built (``--num-shards/--shard`` and ``emoneg merge``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from emoneg_bench.agents.personas import persona_names, sampled_persona_name
from emoneg_bench.domains import generate_scenarios
from emoneg_bench.domains.base import Scenario
from emoneg_bench.negotiation import Task
from emoneg_bench.sweep import fixed_emotion_tasks

from .config import BuildConfig

TRAJECTORY_SPLITS = ("train", "validation", "fixed_emotion_sweep")
TASK_SPLITS = ("train", "validation", "test", "test_unseen_counterparty")
SCENARIO_SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Unit:
    """One shard of a trajectory split: its tasks and, per task, the teacher's emotion schedule."""

    split: str
    index: int
    count: int
    tasks: tuple[Task, ...]
    schedules: tuple[str, ...]

    @property
    def unit_id(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}"


def scenario_splits(config: BuildConfig) -> dict[str, list[Scenario]]:
    """train = training scenarios minus the last ``validation``; validation = those; test = the rest."""
    splits = {split: [] for split in SCENARIO_SPLITS}
    n_train = config.training_scenarios
    for domain in config.domains:
        scenarios = generate_scenarios(domain, config.scenario_count, config.seed)
        splits["train"] += scenarios[: n_train - config.validation_scenarios]
        splits["validation"] += scenarios[n_train - config.validation_scenarios: n_train]
        splits["test"] += scenarios[n_train:]
    return splits


def corpus_tasks(config: BuildConfig, scenarios: list[Scenario]) -> list[Task]:
    """``episodes_per_scenario`` emotion seeds per scenario, personas assigned round-robin, scenario-major
    (all seeds of a scenario are adjacent, so the Monte-Carlo advantage baseline stays within a shard). The
    round-robin has a slot per named persona plus ``corpus.sampled`` slots that each draw a fresh member of the
    sampled population (named by seed, scenario and episode index)."""
    slots = (*config.corpus_personas, *([None] * config.corpus_sampled))

    def persona(i: int, scenario: Scenario, k: int) -> str:
        name = slots[(i + k) % len(slots)]
        return name if name is not None else sampled_persona_name(config.seed, scenario.scenario_id, k)

    return [Task(s, persona(i, s, k), k) for i, s in enumerate(scenarios) for k in range(config.episodes_per_scenario)]


def evaluation_tasks(config: BuildConfig, scenarios: list[Scenario], held_out: bool) -> list[Task]:
    personas = persona_names(held_out=held_out)
    return [Task(s, p, seed) for s in scenarios for p in personas for seed in range(config.task_seeds)]


def sweep_tasks(config: BuildConfig, scenarios: list[Scenario]) -> list[tuple[Task, str]]:
    """Fixed-emotion sweep: the same tasks for every emotion (training personas, training scenarios)."""
    by_domain: dict[str, list[Scenario]] = {}
    for s in scenarios:
        by_domain.setdefault(s.domain, []).append(s)
    tasks = []
    for pool in by_domain.values():
        base = fixed_emotion_tasks(pool, config.corpus_personas, config.sweep_episodes_per_persona)
        tasks += [(task, f"fixed-{emotion}") for emotion in config.sweep_emotions for task in base]
    return tasks


def all_tasks(config: BuildConfig) -> dict[str, list[Task]]:
    scenarios = scenario_splits(config)
    return {
        "train": corpus_tasks(config, scenarios["train"]),
        "validation": corpus_tasks(config, scenarios["validation"]),
        "test": evaluation_tasks(config, scenarios["test"], held_out=False),
        "test_unseen_counterparty": evaluation_tasks(config, scenarios["test"], held_out=True),
    }


def units(config: BuildConfig) -> list[Unit]:
    """Every trajectory shard of the release, in a fixed order."""
    scenarios = scenario_splits(config)
    work = []
    for split in ("train", "validation"):
        tasks = corpus_tasks(config, scenarios[split])
        work += _cut(split, [(t, config.teacher_schedule) for t in tasks], config.max_episodes_per_shard,
                     group=config.episodes_per_scenario)
    sweep = sweep_tasks(config, scenarios["train"])
    if sweep:
        work += _cut("fixed_emotion_sweep", sweep, config.max_episodes_per_shard, group=1)
    return work


def _cut(split: str, items: list[tuple[Task, str]], max_per_shard: int, group: int) -> list[Unit]:
    """Balanced contiguous shards of whole groups (a scenario's seeds are never split across shards)."""
    groups = [items[i: i + group] for i in range(0, len(items), group)]
    per_shard = max(1, max_per_shard // group)
    count = max(1, math.ceil(len(groups) / per_shard))
    bounds = [round(i * len(groups) / count) for i in range(count + 1)]
    shards = []
    for index in range(count):
        chunk = [item for g in groups[bounds[index]: bounds[index + 1]] for item in g]
        shards.append(Unit(split, index, count, tuple(t for t, _ in chunk), tuple(s for _, s in chunk)))
    return shards
