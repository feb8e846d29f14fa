"""Choose the structured protocol's format wording on the ``validation`` split (never on a test split).

The format sentence of the system prompt (``protocol.format_instructions``) is a setting that moves every
language-model row, so it is chosen like any other: each candidate wording is played by the untrained language
model policies (``vanilla-slm``, ``random-emotion``: no training data involved) on the same validation tasks, and
the wording with the highest mean utility over them wins (ties: the current default). Candidates, 2 × 2:

- the offer's range ``from LOW to HIGH`` (the pair sorted) or ``between OWN (your ideal) and OTHER (theirs)``;
- the message shown as a placeholder (``"message": "..."``) or named (``"message": M``).

    python scripts/choose_prompt_wording.py --release RELEASE_DIR --limit 20 --out runs/wording

Prints a Markdown table (mean utility with 95% bootstrap CIs, the share of episodes with a breakdown or an
invalid move) and the winner; writes ``choice.json`` beside the evaluations.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

POLICIES = ("vanilla-slm", "random-emotion")


def wordings():
    """The candidate wordings by name, and the name of the current default (the function's defaults)."""
    from functools import partial

    from emoneg_bench.protocol import format_instructions

    candidates = {f"{'own-first' if o else 'range'}, {'named' if n else 'shown'}":
                  partial(format_instructions, own_first=o, named=n) for o in (True, False) for n in (True, False)}
    return candidates, "own-first, named"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", required=True)
    parser.add_argument("--limit", type=int, default=20, help="validation tasks per domain (20)")
    parser.add_argument("--out", required=True, help="folder for the evaluation Parquet files")
    parser.add_argument("--batch-size", type=int, default=80)
    args = parser.parse_args(argv)

    import numpy as np
    import pyarrow.parquet as pq

    from baselines.evaluate import EvalRequest, evaluate
    from baselines.policies import Runs
    from emoneg_bench import prompts
    from emoneg_bench.perception.recognizer import default_recognizer
    from leaderboard.stats import percentile_bootstrap_ci

    candidates, default = wordings()
    recognizer = default_recognizer()
    out = Path(args.out)
    results = {}
    original = prompts.format_instructions
    try:
        for name, wording in candidates.items():
            prompts.format_instructions = wording
            for policy in POLICIES:
                path = out / f"{name.replace(', ', '-')}-{policy}.parquet"
                if not path.is_file():
                    evaluate(EvalRequest(policy, Path(args.release), split="validation", limit=args.limit,
                                         batch_size=args.batch_size), path, Runs(), recognizer=recognizer)
                results[name, policy] = pq.read_table(path).to_pylist()
    finally:
        prompts.format_instructions = original

    def summary(rows):
        utility = np.array([r["utility"] for r in rows])
        low, high = percentile_bootstrap_ci(utility, 10000, seed=0)
        bad = np.mean([r["ending_name"] == "breakdown" or any(t["offer_status"] == "invalid" for t in r["turns"])
                       for r in rows])
        return utility.mean(), low, high, bad

    print("| wording | " + " | ".join(f"{p} utility [95% CI]" for p in POLICIES) + " | mean | breakdown or invalid |")
    print("|---|" + "---:|" * (len(POLICIES) + 2))
    scores = {}
    for name in candidates:
        cells, bads = [], []
        for policy in POLICIES:
            mean, low, high, bad = summary(results[name, policy])
            cells.append(f"{mean:.3f} [{low:.3f}, {high:.3f}]")
            bads.append(bad)
        scores[name] = float(np.mean([summary(results[name, p])[0] for p in POLICIES]))
        marker = " (current)" if name == default else ""
        print(f"| {name}{marker} | " + " | ".join(cells) + f" | {scores[name]:.3f} | {np.mean(bads):.1%} |")
    best = max(scores, key=lambda n: (round(scores[n], 6), n == default))
    print(f"chosen on validation: {best}" + (" (the current default)" if best == default else
                                              f" (the current default is {default})"))
    (out / "choice.json").write_text(json.dumps({"chosen": best, "current": default, "scores": scores,
                                                 "split": "validation", "limit": args.limit}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
