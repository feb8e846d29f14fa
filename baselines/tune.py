"""``emoneg tune``: choose a selector's settings on ``validation`` and keep the winner.

Each candidate (an IQL reward × β × expectile, or a bc-top cut) is trained into ``OUT/candidates/<name>``, gets
its extraction temperature chosen on the release's validation tasks like every run, and is scored by its best
validation utility. The winner is copied to ``OUT/<kind>`` (``iql`` or ``bc-top``) with a ``selection`` record
in its metadata, and ``OUT/selection-<kind>.md``/``.json`` list every candidate's validation numbers. Test
splits are never read. Finished candidates are reused, so an interrupted tuning resumes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from emoneg_bench.errors import InputError

# The grids of docs/selector.md: what the reward should follow, how sharply the actor imitates advantages (β),
# how optimistic the value is (expectile); and how many top episodes behaviour cloning keeps.
IQL_GRID = {"reward": ("shaped", "utility"), "beta": (3.0, 10.0, 30.0, 100.0), "expectile": (0.7, 0.9)}
BC_GRID = {"top_fraction": (0.05, 0.1, 0.25, 0.5)}


def candidates(base, grid: dict[str, Sequence]) -> list[tuple[str, object]]:
    """Every combination of ``grid`` applied to the config ``base``, named ``key=value,…`` in grid order."""
    combos = [((), base)]
    for key, values in grid.items():
        combos = [((*name, f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"),
                   replace(config, **{key: value})) for name, config in combos for value in values]
    return [(",".join(name) or "default", config) for name, config in combos]


def tune(kind: str, release: str | Path, out_dir: str | Path, base=None, grid: dict[str, Sequence] | None = None,
         role: str = "focal", progress: bool = True, threads: int | None = None,
         log: Callable[[str], None] = print) -> Path:
    """Train every candidate of ``grid`` (default ``IQL_GRID`` / ``BC_GRID``), keep the best on validation in
    ``out_dir/iql`` or ``out_dir/bc-top``. Returns that folder."""
    if kind == "iql":
        from .iql import METADATA, IQLConfig, train_iql

        base, grid, folder = base or IQLConfig(), IQL_GRID if grid is None else grid, "iql"

        def train(config, path):
            return train_iql(release, path, config=config, progress=progress, role=role, threads=threads)
    elif kind == "bc":
        from .bc import METADATA, BCConfig, train_bc

        base, grid, folder = base or BCConfig(), BC_GRID if grid is None else grid, "bc-top"

        def train(config, path):
            return train_bc(release, path, config=config, role=role, progress=progress, threads=threads)
    else:
        raise InputError(f"unknown selector kind {kind!r}; expected iql or bc", field="kind")
    out = Path(out_dir)
    results = []
    for name, config in candidates(base, grid):
        path = out / "candidates" / kind / name
        log(f"[tune {kind}] {name} …")
        train(config, path)
        extraction = json.loads((path / METADATA).read_text())["extraction"]
        best = max(extraction["validation_utility"].values())
        chosen = extraction.get("chosen", f"{extraction['temperature']:g}")
        results.append({"candidate": name, "temperature": extraction["temperature"], "extraction": chosen,
                        "validation_utility": best, "by_temperature": extraction["validation_utility"]})
        log(f"[tune {kind}] {name}: {best:.4f} at {chosen}")
    winner = max(results, key=lambda r: r["validation_utility"])  # ties: the first in grid order
    check = reward_check(release, role=role, discount=base.discount) if kind == "iql" else None
    chosen = out / folder
    tmp = out / f".{folder}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(out / "candidates" / kind / winner["candidate"], tmp)
    metadata = json.loads((tmp / METADATA).read_text())
    metadata["selection"] = {"chosen_on": "validation", "candidate": winner["candidate"], "grid": {
        k: list(v) for k, v in grid.items()}, "candidates": results}
    if check is not None:
        metadata["selection"]["reward_check"] = check
    (tmp / METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(chosen, ignore_errors=True)
    os.replace(tmp, chosen)
    _write_table(out / f"selection-{kind}", kind, results, winner, check)
    return chosen


def reward_check(release: str | Path, role: str = "focal", split: str = "validation", discount: float = 0.99) -> dict:
    """Does each offline reward rank episodes the way the evaluation metric (the role's utility) does?
    Spearman's ρ over the ``split``'s episodes between the discounted return from the first decision and the
    episode's utility (the sum of its ``utility_reward``, 0 without agreement), per reward."""
    from .data import columns, load_split

    rows = columns(load_split(release, "transitions", split, "all", role), "episode_id", "turn", "reward",
                   "utility_reward")
    order = np.lexsort((np.asarray(rows["turn"]), np.asarray(rows["episode_id"])))
    episodes = np.asarray(rows["episode_id"])[order]
    starts = np.flatnonzero(np.r_[True, episodes[1:] != episodes[:-1]])
    position = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    weights = discount ** position
    utility = np.add.reduceat(np.asarray(rows["utility_reward"], dtype=np.float64)[order], starts)
    check = {"split": split, "episodes": int(len(starts)), "discount": discount, "spearman_vs_utility": {}}
    for reward, column in (("shaped", "reward"), ("utility", "utility_reward")):
        returns = np.add.reduceat(np.asarray(rows[column], dtype=np.float64)[order] * weights, starts)
        check["spearman_vs_utility"][reward] = round(_spearman(returns, utility), 4)
    return check


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    def ranks(x):  # average ranks for ties
        sorter = np.argsort(x, kind="stable")
        ordered = x[sorter]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        group = np.cumsum(first) - 1
        starts = np.flatnonzero(first)
        ends = np.r_[starts[1:], len(x)]
        mean_rank = (starts + ends - 1) / 2.0
        out = np.empty(len(x))
        out[sorter] = mean_rank[group]
        return out

    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _write_table(stem: Path, kind: str, results: list[dict], winner: dict, check: dict | None = None) -> None:
    """Markdown and JSON: per candidate, the validation utility at each temperature without a fallback, the best
    extraction with one (IQL), and the choice."""
    keys = {k for r in results for k in r["by_temperature"]}
    temperatures = sorted((k for k in keys if " " not in k), key=float)
    fallback = any(" " in k for k in keys)
    lines = [f"# {kind} settings chosen on validation", "",
             "| candidate | " + " | ".join(f"T={t}" for t in temperatures)
             + (" | best with fallback |" if fallback else " |") + " chosen extraction | best |",
             "|---|" + "---:|" * (len(temperatures) + 2 + fallback)]
    for r in sorted(results, key=lambda r: -r["validation_utility"]):
        mark = " **(chosen)**" if r is winner else ""
        cells = [f"{r['by_temperature'].get(t, float('nan')):.4f}" for t in temperatures]
        if fallback:
            with_fallback = {k: u for k, u in r["by_temperature"].items() if " " in k}
            top = max(with_fallback, key=with_fallback.get) if with_fallback else None
            cells.append(f"{with_fallback[top]:.4f} ({top})" if top else "–")
        lines.append(f"| {r['candidate']}{mark} | " + " | ".join(cells)
                     + f" | {r.get('extraction', r['temperature'])} | {r['validation_utility']:.4f} |")
    if check is not None:
        rho = check["spearman_vs_utility"]
        lines += ["", f"Reward check ({check['split']}, {check['episodes']} episodes): Spearman's ρ between each "
                  f"reward's discounted return and the episode's utility: "
                  + ", ".join(f"{name} {value:.3f}" for name, value in rho.items()) + "."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    record = {"winner": winner["candidate"], "candidates": results}
    if check is not None:
        record["reward_check"] = check
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
