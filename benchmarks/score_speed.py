"""Scoring speed: 1,000,000 synthetic episodes → ``score(..., table="main", bootstrap=10000)``.

Target: under 10 s on 2 cores. The episodes are generated with numpy/pyarrow (4 policies × 4
domains, three short focal/counterparty turns each) into Parquet in a temporary folder; only the
scoring is timed.

    python benchmarks/score_speed.py [--episodes 1000000] [--bootstrap 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from emoneg_bench.schema import features
from leaderboard.scoring import score

POLICIES = ("vanilla-slm", "random-emotion", "iql-only", "emodistill")
DOMAINS = ("debt", "disaster", "hospital", "student")
EMOTIONS = ("anger", "joy", "neutral", "sadness")
ENDINGS = ("agreement", "walkaway", "turn_limit", "breakdown", "error")
TURNS_PER_EPISODE = 3
TARGET_SECONDS = 10.0


def synthetic_episodes(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    schema = features("episodes").arrow_schema
    policy = rng.integers(0, len(POLICIES), n)
    ending = rng.choice(len(ENDINGS), n, p=[0.7, 0.1, 0.1, 0.09, 0.01])
    utility = np.where(ending == 0, np.clip(rng.normal(0.4 + 0.05 * policy, 0.2), 0, 1), 0.0)
    n_turns = n * TURNS_PER_EPISODE
    declared = rng.integers(0, len(EMOTIONS), n_turns)
    perceived = np.where(rng.random(n_turns) < 0.8, declared, rng.integers(0, len(EMOTIONS), n_turns))
    emotion_names = np.array(EMOTIONS, dtype=object)
    turn_struct = pa.StructArray.from_arrays(
        [pa.array(np.tile(np.arange(TURNS_PER_EPISODE, dtype=np.int32), n)),
         pa.array(np.tile(np.array(["focal", "counterparty", "focal"], dtype=object), n)),
         pa.array(emotion_names[declared]), pa.array(emotion_names[perceived])],
        names=["turn", "role", "declared_emotion_name", "perceived_emotion_name"])
    turns = pa.ListArray.from_arrays(pa.array(np.arange(0, n_turns + 1, TURNS_PER_EPISODE, dtype=np.int32)),
                                     turn_struct)
    ids = pa.array(np.char.add("e", np.arange(n).astype(str)))
    columns = {
        "episode_id": ids, "task_id": ids, "split": pa.array(np.full(n, "test", dtype=object)),
        "domain": pa.array(np.array(DOMAINS, dtype=object)[rng.integers(0, len(DOMAINS), n)]),
        "scenario_id": ids, "persona": pa.array(np.full(n, "firm", dtype=object)),
        "focal_agent": pa.array(np.array(POLICIES, dtype=object)[policy]),
        "counterparty_agent": pa.array(np.full(n, "persona", dtype=object)),
        "seed": pa.array(np.arange(n)), "ending_name": pa.array(np.array(ENDINGS, dtype=object)[ending]),
        "utility": pa.array(utility), "rounds": pa.array(rng.integers(1, 12, n).astype(np.int32)),
        "turns": turns,
    }
    fields = [schema.field(name) for name in columns if name != "turns"]
    return pa.table(list(columns.values()), schema=pa.schema([*fields, pa.field("turns", turns.type)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=10000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "episodes.parquet"
        pq.write_table(synthetic_episodes(args.episodes), path, row_group_size=128 * 1024)
        start = time.perf_counter()
        table = score([path], table="main", bootstrap=args.bootstrap)
        seconds = time.perf_counter() - start
    print(table.to_markdown())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    verdict = "meets" if seconds < TARGET_SECONDS else "misses"
    print(f"episodes={args.episodes:,} bootstrap={args.bootstrap:,} seconds={seconds:.2f} cores={cores} "
          f"{verdict} the < {TARGET_SECONDS:g} s target")


if __name__ == "__main__":
    main()
