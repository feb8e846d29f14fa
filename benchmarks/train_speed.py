"""Training speed of the baselines on the default release: IQL gradient steps (one section per trainer).

The default release (``builders/configs/emoneg-v1.yaml``: 20,480 episodes) is built into ``runs/bench/``
on first use (about 70 s) unless ``--release`` names one. A section trains from data already in memory, so
its seconds are the trainer's own (checkpoints and final files included); loading is timed apart. Peak RSS
is the whole process's (``resource.getrusage``): run one section per process (``--only``) for its own.
The load average is printed before and after: on a shared machine, compare best-of-N runs.

    python benchmarks/train_speed.py [--only iql] [--release DIR] [--repeat 3] [--threads N] [--steps 20000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "builders" / "configs" / "emoneg-v1.yaml"
TARGET_IQL_SECONDS = 90.0  # 20,000 steps on the 2-core development machine


def default_release(cache: Path) -> Path:
    """The default release in ``cache``, built there the first time."""
    from builders.build import build
    from builders.config import load_config

    config = load_config(CONFIG)
    release = cache / config.release_name
    if not release.is_dir():
        print(f"building the default release into {cache} (once)")
        build(config, cache, source=CONFIG.name)
    return release


def timed(run, repeat: int) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` calls."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return min(seconds), statistics.median(seconds)


def iql_section(args: argparse.Namespace) -> None:
    from baselines.iql import IQLConfig, fit_iql, load_transitions

    release = args.release or default_release(args.cache)
    start = time.perf_counter()
    data = load_transitions(release)
    loading = time.perf_counter() - start
    config = IQLConfig(steps=args.steps)

    def train() -> None:
        with tempfile.TemporaryDirectory() as out:
            fit_iql(data, out, config, progress=False, resume=False)

    best, median = timed(train, args.repeat)
    per_20k = 20_000 / args.steps
    verdict = "meets" if best * per_20k < TARGET_IQL_SECONDS else "misses"
    print(f"iql: {len(data.actions):,} transitions loaded in {loading:.1f} s; {args.steps:,} steps × {args.repeat}: "
          f"best {best:.1f} s, median {median:.1f} s ({args.steps / best:,.0f} steps/s best, "
          f"{args.steps / median:,.0f} median; {best / args.steps * 1e3:.2f} ms/step)")
    print(f"iql: {best * per_20k:.1f} s per 20,000 steps (best; median {median * per_20k:.1f} s): {verdict} the "
          f"{TARGET_IQL_SECONDS:.0f} s target")


SECTIONS = {"iql": iql_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=tuple(SECTIONS), action="append",
                        help="run only this section (repeatable; default: all)")
    parser.add_argument("--release", type=Path, help="a release folder (default: the default release, built into "
                                                     "--cache if missing)")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "bench", help="where the default release is")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per section (default 3)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--steps", type=int, default=20_000, help="IQL steps per run (default 20000)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.2f}")
    for name in args.only or SECTIONS:
        SECTIONS[name](args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
