"""Build, resume, shard and merge dataset releases.

A build writes into a hidden staging folder next to the release (``.NAME-vX.Y.Z.partial``), one work
unit (= one Parquet shard per trajectory config) at a time: each file is written aside and renamed, and
a unit's marker (its files' sha256 and row counts) is written last. A restarted build skips the units
whose marker exists, so a build killed at any point finishes with the same bytes. The finished staging
folder gets its dataset card and manifest and is renamed into place in one step: the release folder
never exists half-written, and an existing version is never touched.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from emoneg_bench import schema
from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.engine import Agent, Engine
from emoneg_bench.errors import EmoNegError, InputError
from emoneg_bench.hashing import sha256_file
from emoneg_bench.judge import RubricJudge
from emoneg_bench.negotiation import Episode, Role
from emoneg_bench.outputs import folder_lock
from emoneg_bench.rewards import episode_decisions

from . import plan
from .config import BuildConfig

BUILD_CONFIG, UNITS = "build-config.json", "units"
ROW_GROUP = 1000
RETURN_DISCOUNT = 0.99

# Teacher factories by ``teacher.kind``: (config, schedule) -> Agent, for either role. The language-model
# backends register ``lm`` here.
TEACHERS: dict[str, Callable[[BuildConfig, str], Agent]] = {}


def _builtin_teacher(config: BuildConfig, schedule: str) -> Agent:
    from emoneg_bench.agents.teacher import TeacherAgent

    return TeacherAgent(schedule)


@lru_cache(maxsize=4)
def _backend(spec: str):
    from emoneg_bench.backends import load_backend

    return load_backend(spec)


def _lm_teacher(config: BuildConfig, schedule: str) -> Agent:
    """A language model (``teacher.model``: any ``lm:`` spec) writes the teacher's messages."""
    from emoneg_bench.agents.lm import LMNegotiator

    return LMNegotiator(_backend(config.teacher_model), schedule)


TEACHERS["builtin"] = _builtin_teacher
TEACHERS["lm"] = _lm_teacher


def make_teacher(config: BuildConfig, schedule: str) -> Agent:
    if config.teacher_kind not in TEACHERS:
        raise EmoNegError(f"teacher kind {config.teacher_kind!r} is not available in this installation "
                          f"(available: {', '.join(TEACHERS)})")
    return TEACHERS[config.teacher_kind](config, schedule)


# ------------------------------------------------------------------------------------------ files

def write_parquet(rows: Sequence[dict], config_name: str, path: Path) -> int:
    """Write rows with the config's features (HF metadata embedded), atomically. Returns the row count."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = schema.arrow_table(config_name, rows)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd")
    os.replace(tmp, path)
    return table.num_rows


def write_json(path: Path, payload) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def shard_path(root: Path, config_name: str, split: str, index: int, count: int) -> Path:
    return root / "data" / config_name / f"{split}-{index:05d}-of-{count:05d}.parquet"


# ------------------------------------------------------------------------------------------ units

def run_unit(unit: plan.Unit, config: BuildConfig, engine: Engine) -> list[Episode]:
    """Play the unit's tasks: the teacher in ``teacher.role``, each task's persona on the other side."""
    episodes: list[Episode] = []
    side = Role(config.teacher_role)
    pairs = zip(unit.tasks, unit.schedules)
    for schedule, group in itertools.groupby(pairs, key=lambda pair: pair[1]):
        tasks = [task for task, _ in group]
        players = {side: make_teacher(config, schedule), side.other: PersonaAgent()}
        episodes += engine.run(tasks, players[Role.FOCAL], players[Role.COUNTERPARTY])
    return episodes


def unit_rows(unit: plan.Unit, episodes: Sequence[Episode], role: Role) -> dict[str, list[dict]]:
    """Rows of every trajectory config for one unit; judge scores, transitions and sft rows are the
    decisions of ``role``, the side the teacher played."""
    judge = RubricJudge()
    rows: dict[str, list[dict]] = {"episodes": [], "transitions": [], "sft": []}
    scored = [(episode, judge.score_episode(episode, role)) for episode in episodes]
    for episode, scores in scored:
        rows["episodes"].append(schema.episode_row(episode, unit.split, scores))
    if unit.split == "fixed_emotion_sweep":
        return rows
    decided = [(episode, scores, episode_decisions(episode, role)) for episode, scores in scored]
    advantages = monte_carlo_advantages([decisions for _, _, decisions in decided],
                                        [episode.task.scenario.scenario_id for episode, _, _ in decided])
    for (episode, scores, decisions), advantage in zip(decided, advantages, strict=True):
        rows["transitions"] += schema.transition_rows(episode, unit.split, decisions, scores, role)
        rows["sft"] += schema.sft_rows(episode, unit.split, decisions, advantage, scores, role)
    return rows


def monte_carlo_advantages(decisions: Sequence[Sequence], scenario_ids: Sequence[str]) -> list[list[float]]:
    """Advantage of each decision: its discounted return-to-go ``G_t = Σ_k 0.99^k r_{t+k}`` minus the mean
    ``G_t`` of all decisions at the same turn of the same scenario (across its emotion seeds)."""
    returns = []
    for episode_decisions_ in decisions:
        g, backwards = 0.0, []
        for d in reversed(episode_decisions_):
            g = d.reward + RETURN_DISCOUNT * g
            backwards.append(g)
        returns.append(backwards[::-1])
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for scenario_id, episode_decisions_, gs in zip(scenario_ids, decisions, returns):
        for d, g in zip(episode_decisions_, gs):
            groups[scenario_id, d.turn].append(g)
    baseline = {key: sum(values) / len(values) for key, values in groups.items()}
    return [[g - baseline[scenario_id, d.turn] for d, g in zip(episode_decisions_, gs)]
            for scenario_id, episode_decisions_, gs in zip(scenario_ids, decisions, returns)]


def build_unit(unit: plan.Unit, config: BuildConfig, engine: Engine, root: Path) -> None:
    rows = unit_rows(unit, run_unit(unit, config, engine), Role(config.teacher_role))
    files = {}
    for config_name, config_rows in rows.items():
        if unit.split == "fixed_emotion_sweep" and config_name != "episodes":
            continue
        path = shard_path(root, config_name, unit.split, unit.index, unit.count)
        n = write_parquet(config_rows, config_name, path)
        files[str(path.relative_to(root))] = {"rows": n, "sha256": sha256_file(path)}
    (root / UNITS).mkdir(exist_ok=True)
    write_json(root / UNITS / f"{unit.unit_id}.json", files)


def _engine(config: BuildConfig) -> Engine:
    from emoneg_bench.perception.recognizer import default_recognizer

    return Engine(default_recognizer(), max_turns=config.max_turns)


def _start_staging(root: Path, config: BuildConfig) -> None:
    """Create ``root`` for ``config``, or check that an interrupted build there used the same config."""
    marker = root / BUILD_CONFIG
    if marker.exists():
        if json.loads(marker.read_text()) != json.loads(json.dumps(config.to_dict())):
            raise InputError(f"an interrupted build of a different config is in {root}; delete that folder or "
                             "build with the same config to resume it")
        return
    root.mkdir(parents=True, exist_ok=True)
    write_json(marker, config.to_dict())


def _done(root: Path, unit: plan.Unit) -> bool:
    marker = root / UNITS / f"{unit.unit_id}.json"
    if not marker.exists():
        return False
    files = json.loads(marker.read_text())
    return all((root / name).exists() for name in files)


def _check_out(out: Path, config: BuildConfig) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError("the output path is a file, expected a folder for releases", file=str(out))
    release = out / config.release_name
    if release.exists():
        raise InputError(f"release {config.release_name} already exists and versions are immutable; bump "
                         "`version` in the config to build a new one", file=str(release))
    return release


def build(config: BuildConfig, out: str | Path, *, num_shards: int = 1, shard: int = 0, progress: bool = True,
          source: str | None = None) -> Path:
    """Build the release (or, with ``num_shards > 1``, one part of it to combine with :func:`merge`) while
    holding a lock next to it: a second build of the same release or part says who holds it and stops."""
    out = Path(out)
    release = _check_out(out, config)
    if config.teacher_kind not in TEACHERS:  # refuse before anything is written
        make_teacher(config, config.teacher_schedule)
    if not (num_shards >= 1 and 0 <= shard < num_shards):
        raise InputError(f"--shard must be in 0…{num_shards - 1} for --num-shards {num_shards}, got {shard}")
    root = (out / f".{config.release_name}.partial" if num_shards == 1
            else out / f"{config.release_name}.part-{shard:03d}-of-{num_shards:03d}")
    out.mkdir(parents=True, exist_ok=True)
    target = release if num_shards == 1 else root
    with folder_lock(_lock(out, target), target.name):
        _check_out(out, config)  # another build may have finished it while we waited for the lock
        return _build_locked(config, release, root, num_shards, shard, progress, source)


def _lock(out: Path, target: Path) -> Path:
    """The lock file of a build writing ``target`` (a release, or one part of a sharded build)."""
    return out / f".{target.name}.lock"


def _build_locked(config: BuildConfig, release: Path, root: Path, num_shards: int, shard: int, progress: bool,
                  source: str | None) -> Path:
    from tqdm import tqdm

    work = plan.units(config)
    mine = [u for i, u in enumerate(work) if i % num_shards == shard]
    _start_staging(root, config)
    todo = [u for u in mine if not _done(root, u)]
    engine = _engine(config) if todo else None
    with tqdm(total=sum(len(u.tasks) for u in mine), initial=sum(len(u.tasks) for u in mine if u not in todo),
              unit="ep", desc=config.release_name, disable=not progress) as bar:
        for unit in todo:
            build_unit(unit, config, engine, root)
            bar.update(len(unit.tasks))
    if num_shards > 1:
        return root
    from .card import finalize

    finalize(root, config, work, source=source)
    os.replace(root, release)
    return release


def merge(parts: Sequence[str | Path], out: str | Path, *, source: str | None = None) -> Path:
    """Combine the parts of a sharded build into the release a single build makes."""
    parts = [Path(p) for p in parts]
    configs = []
    for part in parts:
        marker = part / BUILD_CONFIG
        if not marker.is_file():
            raise InputError("not a build part (no build-config.json)", file=str(part))
        configs.append(json.loads(marker.read_text()))
    if any(c != configs[0] for c in configs):
        raise InputError("the parts were built from different configs; merge parts of one build only")
    config = BuildConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in configs[0].items()})
    release = _check_out(Path(out), config)
    Path(out).mkdir(parents=True, exist_ok=True)
    with folder_lock(_lock(Path(out), release), release.name):
        _check_out(Path(out), config)
        return _merge_locked(config, parts, release, Path(out), source)


def _merge_locked(config: BuildConfig, parts: list[Path], release: Path, out: Path, source: str | None) -> Path:
    from .card import finalize

    work = plan.units(config)
    owner: dict[str, Path] = {}
    for part in parts:
        for marker in sorted((part / UNITS).glob("*.json")):
            if marker.stem in owner:
                raise InputError(f"unit {marker.stem} is in two parts ({owner[marker.stem]} and {part})")
            owner[marker.stem] = part
    missing = [u.unit_id for u in work if u.unit_id not in owner]
    if missing:
        raise InputError(f"the parts do not cover the build: missing {len(missing)} units, e.g. {missing[0]}")
    root = Path(out) / f".{config.release_name}.merging"  # merge's own staging, never a build's
    if root.exists():
        shutil.rmtree(root)
    _start_staging(root, config)
    (root / UNITS).mkdir()
    for unit in work:
        part = owner[unit.unit_id]
        files = json.loads((part / UNITS / f"{unit.unit_id}.json").read_text())
        for name, meta in files.items():
            if sha256_file(part / name) != meta["sha256"]:
                raise InputError("shard does not match its recorded sha256 (corrupted part?)", file=str(part / name))
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(part / name, root / name)
        shutil.copyfile(part / UNITS / f"{unit.unit_id}.json", root / UNITS / f"{unit.unit_id}.json")
    finalize(root, config, work, source=source)
    os.replace(root, release)
    return release
