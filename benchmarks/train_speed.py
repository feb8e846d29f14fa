"""Training speed of the baselines on the default release: IQL steps/s, LoRA-SFT and JPO seconds/step and
tokens/s for SmolLM2 (and a tiny model with --tiny-model), one section per trainer.

The default release (``builders/configs/emoneg-v1.yaml``: 20,480 episodes) is built into ``runs/bench/``
on first use (about 70 s) unless ``--release`` names one. A section trains from data already in memory, so
its seconds are the trainer's own (checkpoints and final files included); loading is timed apart. Peak RSS
is the whole process's (``resource.getrusage``): run one section per process (``--only``) for its own.
The load average is printed before and after: on a shared machine, compare best-of-N runs.

    python benchmarks/train_speed.py [--only iql|sft|jpo] [--release DIR] [--repeat 3] [--threads N] [--steps 20000]
                                     [--lora-steps 10] [--lora-batch 4] [--tiny-model FOLDER]
"""

from __future__ import annotations

import argparse
import functools
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
            fit_iql(data, out, config, progress=False, resume=False, device=args.device)

    best, median = timed(train, args.repeat)
    per_20k = 20_000 / args.steps
    verdict = "meets" if best * per_20k < TARGET_IQL_SECONDS else "misses"
    from emoneg_bench.backends.local import resolve_device

    print(f"iql on {resolve_device(args.device)}: {len(data.actions):,} transitions loaded in {loading:.1f} s; {args.steps:,} steps × {args.repeat}: "
          f"best {best:.1f} s, median {median:.1f} s ({args.steps / best:,.0f} steps/s best, "
          f"{args.steps / median:,.0f} median; {best / args.steps * 1e3:.2f} ms/step)")
    print(f"iql: {best * per_20k:.1f} s per 20,000 steps (best; median {median * per_20k:.1f} s): {verdict} the "
          f"{TARGET_IQL_SECONDS:.0f} s target")


@functools.cache  # the sft and jpo sections share one run per model
def lora_figures(release: Path, model: str, steps: int, batch_size: int) -> dict[str, tuple[float, float]]:
    """(seconds/step, tokens/s) of LoRA-SFT and JPO for one base model, from the trainers' own runtime."""
    from baselines.jpo import JPOSettings, train_jpo
    from baselines.sft import SFTSettings, train_sft

    with tempfile.TemporaryDirectory() as tmp:
        sft = train_sft(release, Path(tmp) / "sft", model=model, progress=False,
                        settings=SFTSettings(max_steps=steps, batch_size=batch_size, logging_steps=1, save_steps=10**6))
        runtime = sft["log_history"][-1]["train_runtime"]
        tokens = max(entry.get("num_tokens", 0) for entry in sft["log_history"])
        figures = {"sft": (runtime / steps, tokens / runtime)}
        jpo = train_jpo(release, Path(tmp) / "sft", Path(tmp) / "jpo", progress=False,
                        settings=JPOSettings(max_steps=steps, batch_size=batch_size, max_examples=steps * batch_size,
                                             logging_steps=1, save_steps=10**6))
        runtime = jpo["log_history"][-1]["train_runtime"]
        figures["jpo"] = (runtime / steps, jpo["tokens"] / runtime)  # one pass over exactly steps × batch examples
    return figures


def lora_section(kind: str):
    def section(args: argparse.Namespace) -> None:
        from emoneg_bench.backends.smollm2 import smollm2_folder

        release = args.release or default_release(args.cache)
        models = {"smollm2": str(smollm2_folder())}
        if args.tiny_model:
            models["tiny"] = str(args.tiny_model)
        for label, model in models.items():
            per_step, per_second = lora_figures(release, model, args.lora_steps, args.lora_batch)[kind]
            print(f"{kind}: {label:<8} batch {args.lora_batch}: {per_step:.2f} s/step, {per_second:,.0f} tokens/s "
                  f"(mean of {args.lora_steps} steps)")
    return section


SECTIONS = {"iql": iql_section, "sft": lora_section("sft"), "jpo": lora_section("jpo")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=tuple(SECTIONS), action="append",
                        help="run only this section (repeatable; default: all)")
    parser.add_argument("--release", type=Path, help="a release folder (default: the default release, built into "
                                                     "--cache if missing)")
    parser.add_argument("--cache", type=Path, default=REPO / "runs" / "bench", help="where the default release is")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per section (default 3)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--device", default="auto", help="IQL's device: auto (CUDA when there is one), cpu, cuda")
    parser.add_argument("--steps", type=int, default=20_000, help="IQL steps per run (default 20000)")
    parser.add_argument("--lora-steps", type=int, default=10, help="SFT/JPO steps per model (default 10)")
    parser.add_argument("--lora-batch", type=int, default=4, help="SFT/JPO batch size (default 4)")
    parser.add_argument("--tiny-model", type=Path, help="also time a small local model folder (e.g. a 2-layer Llama)")
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
