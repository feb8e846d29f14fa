"""Release build speed and memory: wall time, episodes/s and peak RSS for the default release
(builders/configs/emoneg-v1.yaml: 16,000 teacher episodes + the fixed-emotion sweep) and for a
100,000-episode release of the same shape (312 emotion seeds per training scenario).

Each build runs in its own process (`emoneg build`), so its peak RSS is its own. The recognizer is
trained and cached first, outside the timings.

    python benchmarks/build_release.py            # both
    python benchmarks/build_release.py --only default
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "builders" / "configs" / "emoneg-v1.yaml"


# Runs `emoneg build` in a child that reports its own peak RSS when it is done.
CHILD = ("import resource, sys\nfrom emoneg_bench.cli import main\ncode = main(sys.argv[1:])\n"
         "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(code)")


def run_build(config: Path, out: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "build", str(config), "--out", str(out), "--quiet"],
                          check=True, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb = int(done.stdout.split("peak_rss_kb")[-1])
    release = next(p for p in out.iterdir() if p.is_dir())
    manifest = json.loads((release / "MANIFEST.json").read_text())
    episodes = sum(s["rows"] for s in manifest["shards"].values() if s["config"] == "episodes")
    size = sum(p.stat().st_size for p in release.rglob("*") if p.is_file())
    return {"release": release.name, "episodes": episodes, "seconds": round(seconds, 1),
            "episodes_per_s": round(episodes / seconds, 1),
            "peak_rss_mb": round(peak_kb / 1024),
            "release_mb": round(size / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("default", "100k"))
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "emoneg_bench.cli", "recognizer"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    raw = yaml.safe_load(CONFIG.read_text())
    big = {**raw, "name": "emoneg-trajectories-100k", "corpus": {**raw["corpus"], "episodes_per_scenario": 312}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "big.yaml").write_text(yaml.safe_dump(big))
        plan = [("default", CONFIG), ("100k", tmp / "big.yaml")]
        print(f"{'build':>8} {'episodes':>9} {'seconds':>8} {'episodes/s':>11} {'peak RSS MB':>12} {'size MB':>8}")
        for label, config in plan:
            if args.only and args.only != label:
                continue
            out = tmp / label
            out.mkdir()
            r = run_build(config, out)
            print(f"{label:>8} {r['episodes']:>9} {r['seconds']:>8} {r['episodes_per_s']:>11} {r['peak_rss_mb']:>12} "
                  f"{r['release_mb']:>8}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
