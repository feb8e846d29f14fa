"""Reading a release folder: its manifest, the rows of one config and split, and its evaluation tasks.

Every package reads releases through these functions (the builders write them), and every one of them
verifies the release first (:mod:`emoneg_bench.integrity`: manifest format, every shard's sha256, the
card's configs against the files, the requested configs and splits): a tampered or incomplete release
is refused with one sentence naming the file, whoever reads it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .agents.personas import persona_names
from .domains import get_domain
from .errors import InputError
from .integrity import MANIFEST, SUPPORTED_MAJOR, VerifiedRelease, verify_release
from .limits import read_limited
from .negotiation import Task

__all__ = ["SUPPORTED_MAJOR", "VerifiedRelease", "config_rows", "load_release_dataset", "load_release_tasks",
           "max_turns", "open_release", "release_manifest", "verify_release"]
SHOWN = 5
# The evaluation splits and whether their personas are the held-out ones: every test scenario meets every
# persona of that kind once per task seed.
EVALUATION_SPLITS = {"test": False, "test_unseen_counterparty": True}


def release_manifest(release_dir: str | Path) -> dict:
    """The parsed ``MANIFEST.json`` of a release, unverified (what a run records about the release it
    already read through :func:`open_release`)."""
    path = Path(release_dir) / MANIFEST
    if not path.is_file():
        raise InputError(f"{release_dir} is not a release folder: it has no MANIFEST.json")
    try:
        return json.loads(read_limited(path, "manifest"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"MANIFEST.json is not valid JSON ({getattr(error, 'msg', error)})", file=str(path)) from None


def open_release(release_dir: str | Path, configs: tuple[str, ...] = (), split: str | None = None) -> dict:
    """The manifest of a verified release that has every config in ``configs`` (with ``split``, when
    given); otherwise one sentence saying what is wrong (see :func:`emoneg_bench.integrity.verify_release`)."""
    return verify_release(release_dir, configs, split).manifest


def max_turns(manifest: dict) -> int:
    return int(manifest["builder_config"]["max_turns"])


def config_rows(release_dir: str | Path, config: str, split: str) -> list[dict]:
    """The rows of one config's split, read from the verified shards."""
    import pyarrow.parquet as pq

    release = verify_release(release_dir, (config,), split)
    return [row for p in release.files(config, split) for row in pq.read_table(p).to_pylist()]


def load_release_dataset(release_dir: str | Path, config: str, split: str):
    """``datasets.load_dataset(release, config, split=split)`` on the verified release, cached under a
    folder named by the shards' digests: a release is never served another one's cached rows, whatever
    their names (``datasets`` fingerprints a local folder by its card and paths, not its bytes)."""
    from datasets import load_dataset

    from .cache import cache_dir

    release = verify_release(release_dir, (config,), split)
    cache = cache_dir() / "datasets" / release.content_key[:32]
    return load_dataset(str(release.root), config, split=split, cache_dir=str(cache))


def load_release_tasks(release_dir: str | Path, split: str) -> list[Task]:
    """The release's ``split`` tasks, with scenarios rebuilt from the ``scenarios`` config. An evaluation
    split must be complete: every test scenario × every persona of its kind × every task seed, once."""
    release_dir = Path(release_dir)
    verify_release(release_dir, ("scenarios",))
    release = verify_release(release_dir, ("tasks",), split)
    scenarios, test_ids = {}, []
    for scenario_split in release.splits("scenarios"):
        for row in config_rows(release_dir, "scenarios", scenario_split):
            scenario_type = get_domain(row["domain"]).scenario_type
            names = {f.name for f in dataclasses.fields(scenario_type)}
            scenarios[row["scenario_id"]] = scenario_type(**{k: v for k, v in row.items() if k in names})
            if scenario_split == "test":
                test_ids.append(row["scenario_id"])
    task_rows = config_rows(release_dir, "tasks", split)
    missing = sorted({r["scenario_id"] for r in task_rows} - scenarios.keys())
    if missing:
        raise InputError(f"{release_dir}: tasks {split} name scenarios missing from the scenarios config: "
                         f"{', '.join(missing[:SHOWN])}")
    if split in EVALUATION_SPLITS:
        _check_complete(release, split, task_rows, test_ids)
    return [Task(scenarios[r["scenario_id"]], r["persona"], r["seed"]) for r in task_rows]


def _check_complete(release: VerifiedRelease, split: str, task_rows: list[dict], test_ids: list[str]) -> None:
    seeds = release.manifest["builder_config"].get("task_seeds")
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise InputError("builder_config.task_seeds is not a positive whole number", file=str(release.root / MANIFEST),
                         field="builder_config")
    personas = persona_names(held_out=EVALUATION_SPLITS[split])
    expected = {(s, p, k) for s in test_ids for p in personas for k in range(seeds)}
    found = [(r["scenario_id"], r["persona"], r["seed"]) for r in task_rows]
    where = str(release.files("tasks", split)[0])
    if len(found) != len(set(found)):
        raise InputError(f"repeats tasks of the {split} split; {len(found)} rows, {len(set(found))} distinct",
                         file=where)
    if set(found) != expected:
        lacking = sorted(expected - set(found))
        shown = ", ".join("/".join(map(str, t)) for t in lacking[:3])
        raise InputError(f"the {split} split is incomplete: {len(lacking)} of the {len(expected)} tasks (every test "
                         f"scenario × {'held-out' if EVALUATION_SPLITS[split] else 'training'} persona × seed) are "
                         f"missing{f', e.g. {shown}' if shown else ''}"
                         f"{f'; {len(set(found) - expected)} are not of that split' if set(found) - expected else ''}",
                         file=where)
