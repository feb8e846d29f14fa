"""Reading a release folder: its manifest, the rows of one config and split, and its evaluation tasks.

Every package reads releases through these functions (the builders write them): trainers check the
version and the configs they need here, evaluation and submission validation rebuild tasks here.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq

from .domains import get_domain
from .errors import InputError
from .negotiation import Task

SUPPORTED_MAJOR = 1  # release format major versions this toolkit reads
SHOWN = 5


def release_manifest(release_dir: str | Path) -> dict:
    path = Path(release_dir) / "MANIFEST.json"
    if not path.is_file():
        raise InputError(f"{release_dir} is not a release folder: it has no MANIFEST.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"MANIFEST.json is not valid JSON ({error.msg})", file=str(path)) from None


def open_release(release_dir: str | Path, configs: tuple[str, ...] = ()) -> dict:
    """The manifest of a release this toolkit can read that has every config in ``configs``;
    otherwise one sentence saying what is wrong (not a release, wrong version, missing config)."""
    release_dir = Path(release_dir)
    manifest = release_manifest(release_dir)
    version = str(manifest.get("version", ""))
    major = version.split(".")[0]
    if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        raise InputError(f"release {manifest.get('release', release_dir)} has version {version or 'none'}; this "
                         f"toolkit reads version {SUPPORTED_MAJOR}.x releases", file=str(release_dir / "MANIFEST.json"),
                         field="version")
    for config in configs:
        if not any((release_dir / "data" / config).glob("*.parquet")):
            raise InputError(f"release {release_dir} has no {config!r} config (no data/{config}/*.parquet); "
                             f"rebuild it with `emoneg build`")
    return manifest


def max_turns(manifest: dict) -> int:
    return int(manifest["builder_config"]["max_turns"])


def config_rows(release_dir: str | Path, config: str, split: str) -> list[dict]:
    paths = sorted((Path(release_dir) / "data" / config).glob(f"{split}-*.parquet"))
    return [row for p in paths for row in pq.read_table(p).to_pylist()]


def load_release_tasks(release_dir: str | Path, split: str) -> list[Task]:
    """The release's ``split`` tasks, with scenarios rebuilt from the ``scenarios`` config."""
    release_dir = Path(release_dir)
    scenarios = {}
    for scenario_split in ("train", "validation", "test"):
        for row in config_rows(release_dir, "scenarios", scenario_split):
            scenario_type = get_domain(row["domain"]).scenario_type
            names = {f.name for f in dataclasses.fields(scenario_type)}
            scenarios[row["scenario_id"]] = scenario_type(**{k: v for k, v in row.items() if k in names})
    task_rows = config_rows(release_dir, "tasks", split)
    missing = sorted({r["scenario_id"] for r in task_rows} - scenarios.keys())
    if missing:
        raise InputError(f"{release_dir}: tasks {split} name scenarios missing from the scenarios config: "
                         f"{', '.join(missing[:SHOWN])}")
    return [Task(scenarios[r["scenario_id"]], r["persona"], r["seed"]) for r in task_rows]
