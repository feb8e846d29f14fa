"""Opening a verified release: the first open (every shard hashed) and the second (digests from the cache).

Each open runs in a fresh process, as each `emoneg` command does, and only the ``open_release`` call is
timed (not Python's start-up or imports). The first open uses an empty ``$EMONEG_CACHE``; the second
reuses the digest cache the first one wrote. Target: the second open under 1 s for the default release.

    python benchmarks/open_release.py RELEASE_FOLDER [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_SECONDS = 1.0
TIMED = ("import sys, time\nfrom emoneg_bench.release import open_release\n"
         "start = time.perf_counter()\nopen_release(sys.argv[1])\nprint(time.perf_counter() - start)\n")


def open_in_new_process(release: Path, cache: Path) -> float:
    environment = {**os.environ, "EMONEG_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", TIMED, str(release)], env=environment, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, help="a release folder (e.g. built with `emoneg build`)")
    parser.add_argument("--repeat", type=int, default=3, help="first/second pairs to run (default 3)")
    args = parser.parse_args()
    shards = sorted((args.release / "data").rglob("*.parquet"))
    size = sum(p.stat().st_size for p in shards)
    print(f"{args.release.name}: {len(shards)} shards, {size / 2**20:.1f} MiB")
    print("| run | first open s | second open s |\n|---:|---:|---:|")
    seconds = []
    for run in range(1, args.repeat + 1):
        with tempfile.TemporaryDirectory() as cache:
            first = open_in_new_process(args.release, Path(cache))
            second = open_in_new_process(args.release, Path(cache))
        seconds.append(second)
        print(f"| {run} | {first:.3f} | {second:.3f} |")
    worst = max(seconds)
    print(f"second open, worst of {args.repeat}: {worst:.3f} s (target < {TARGET_SECONDS:g} s: "
          f"{'met' if worst < TARGET_SECONDS else 'NOT met'})")


if __name__ == "__main__":
    main()
