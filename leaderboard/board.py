"""The leaderboard's store of accepted submissions: one folder per entry under ``leaderboard/submissions/``
(or any board folder), holding the **replayed** episodes as Parquet, scored by the rubric judge, and the
submission's metadata as JSON. Entries are immutable; no DuckDB database files are ever written."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import yaml

from emoneg_bench import __version__
from emoneg_bench.errors import InputError
from emoneg_bench.hashing import sha256_file
from emoneg_bench.judge import RubricJudge
from emoneg_bench.release import open_release

from .submission import ENTRY_PROTOCOLS, EPISODES, METADATA, Report, validate_submission

DEFAULT_BOARD = Path("leaderboard") / "submissions"
ENTRY_METADATA = "entry.json"


def entry_name(name: str) -> str:
    """A folder name from the submission's name: lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug:
        raise InputError(f"submission name {name!r} has no letters or digits to name its leaderboard entry")
    return slug[:64]


def submit(folder: str | Path, release_dir: str | Path, board: str | Path = DEFAULT_BOARD,
           recognizer=None) -> tuple[Report, Path | None]:
    """Validate and replay ``folder``; if accepted, add it to ``board`` (written aside, then renamed)."""
    import pyarrow.parquet as pq

    from emoneg_bench.schema import arrow_table, episode_row

    report = validate_submission(folder, release_dir, recognizer=recognizer)
    if not report.accepted:
        return report, None
    metadata = yaml.safe_load((Path(folder) / METADATA).read_text())
    board = Path(board)
    target = board / entry_name(metadata["name"])
    if target.exists():
        raise InputError(f"the leaderboard already has an entry {target.name!r}; entries are immutable, "
                         "submit under a new name", file=str(target))
    board.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=board))
    try:
        judge = RubricJudge()
        rows = [episode_row(e, split, judge.score_episode(e))
                for e, split in zip(report.replayed, _splits(Path(folder)), strict=True)]
        pq.write_table(arrow_table("episodes", rows), staging / EPISODES, compression="zstd")
        manifest = open_release(release_dir)
        entry = {"protocol": ENTRY_PROTOCOLS[0], **metadata, "release": manifest["release"], "release_version": manifest["version"],
                 "episodes": len(rows), "episodes_sha256": sha256_file(staging / EPISODES),
                 "verified_by": f"emoneg-bench {__version__} replay", "scores": "recomputed from the replay"}
        (staging / ENTRY_METADATA).write_text(json.dumps(entry, indent=2, sort_keys=True) + "\n")
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report, target


def _splits(folder: Path) -> list[str]:
    """The split of each submitted episode, in file order (the replay keeps that order)."""
    import pyarrow.parquet as pq

    return pq.read_table(folder / EPISODES, columns=["split"]).column("split").to_pylist()
