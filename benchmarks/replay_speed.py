"""Replay verification speed: ``validate_submission`` on a submission over a release's test tasks.

Target: at least 200 episodes/s. Builds the ``small`` release into a temporary folder unless a release
folder is given; the submission is the random-emotion teacher against the official personas on the
``test`` tasks, each task played under ``--repeat`` seeds (a synthetic release whose ``test`` tasks are
those repeats, so the submission covers it exactly). Only the validation (checks + replay) is timed.

    python benchmarks/replay_speed.py [RELEASE_DIR] [--repeat 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.teacher import TeacherAgent
from emoneg_bench.engine import Engine
from emoneg_bench.perception.recognizer import default_recognizer
from emoneg_bench.schema import features, task_row
from leaderboard.submission import load_release_tasks, release_manifest, validate_submission, write_submission

TARGET_EPISODES_PER_SECOND = 200.0


def small_release(out: Path) -> Path:
    from builders.build import build
    from builders.config import load_config

    return build(load_config("builders/configs/emoneg-v1.yaml", "small"), out, progress=False)


def repeated_release(release: Path, out: Path, repeat: int) -> Path:
    """A copy of ``release`` whose ``test`` tasks are each original task under ``repeat`` seeds."""
    copy = out / release.name
    shutil.copytree(release, copy, ignore=shutil.ignore_patterns("episodes", "sft", "transitions"))
    tasks = [dataclasses.replace(t, seed=t.seed + k * 1000) for t in load_release_tasks(release, "test")
             for k in range(repeat)]
    for path in (copy / "data" / "tasks").glob("test-*.parquet"):
        path.unlink()
    rows = [task_row(t, "test") for t in tasks]
    pq.write_table(pa.Table.from_pylist(rows, schema=features("tasks").arrow_schema),
                   copy / "data" / "tasks" / "test-00000-of-00001.parquet")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", nargs="?", type=Path, help="a release folder (default: build the small one)")
    parser.add_argument("--repeat", type=int, default=4, help="seeds per test task (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        release = args.release or small_release(tmp / "build")
        if args.repeat > 1:
            release = repeated_release(release, tmp / "repeated", args.repeat)
        manifest = release_manifest(release)
        recognizer = default_recognizer()
        tasks = load_release_tasks(release, "test")
        engine = Engine(recognizer, manifest["builder_config"]["max_turns"])
        episodes = list(engine.run(tasks, TeacherAgent("random"), PersonaAgent()))
        metadata = {"name": "replay benchmark", "contact": "bench@example.org", "model": "teacher:random",
                    "training_data": manifest["version"], "licence": "apache-2.0", "seeds": [0],
                    "description": "random-emotion teacher on the test tasks"}
        folder = write_submission(tmp / "submission", episodes, metadata)
        start = time.perf_counter()
        report = validate_submission(folder, release, recognizer)
        seconds = time.perf_counter() - start
    if not report.accepted:
        raise SystemExit("the benchmark submission was rejected:\n" + "\n".join(report.problems))
    rate = len(episodes) / seconds
    messages = sum(len(e.utterances) for e in report.replayed)
    verdict = "meets" if rate >= TARGET_EPISODES_PER_SECOND else "misses"
    print(f"validated and replayed {len(episodes):,} episodes ({messages:,} messages) in {seconds:.2f} s: "
          f"{rate:,.0f} episodes/s ({verdict} the {TARGET_EPISODES_PER_SECOND:.0f} episodes/s target)")


if __name__ == "__main__":
    main()
