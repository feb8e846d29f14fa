"""Score evaluation transcripts: DuckDB SQL over ``episodes``-schema Parquet files → paper tables.

Every table leaves ``error`` episodes out (a backend failed; the negotiation did not really run) and
counts them in an ``errors`` column instead. A policy is the ``focal_agent``. Utilities get seeded
percentile bootstrap 95% CIs over episodes, rates get Wilson intervals (see ``leaderboard.stats``).

Tables (``score(paths, table=...)``):
- ``main``: rank (ties where CIs overlap), policy, mean utility ± CI per domain and overall.
- ``metrics``: per policy × domain and overall: n, utility, agreement and walk-away rates, rounds,
  expression fidelity (share of focal turns whose perceived emotion equals the declared one, over
  focal turns that declared an emotion).
- ``emotions``: per declared focal emotion. ``fixed`` episodes (every focal turn declared the same
  emotion, e.g. the fixed-emotion sweep) are used when any exist; otherwise every focal turn is
  credited with its episode's utility (``per-turn`` association, CI over turns). ``mode=`` forces one.
- ``transfer``: policy × values of ``by=`` (``split``, e.g. ``test`` vs ``test_unseen_counterparty``;
  or ``counterparty_agent``, ``persona``, ``domain``), utility ± CI.
- ``ablation``: for each ``pairs=[(policy, baseline), …]`` (default: the paper's pairs present in the
  data, ``PAPER_ABLATIONS``; without any, every policy against the anchor),
  the difference in mean utility over shared (split, task_id) with a paired bootstrap CI over tasks.
- ``tournament``: focal_agent vs counterparty_agent games; Bradley–Terry ratings with bootstrap CIs.
- ``headroom``: per split and persona, the utility of uniform random emotions (``random=``, default
  ``teacher``), of each selector, and of an upper reference (``reference=``, default the per-persona best
  fixed emotion), with the share of the random → reference gap each selector closes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from emoneg_bench.errors import InputError

from .results import results_source
from .stats import (
    bootstrap_bradley_terry,
    bradley_terry,
    percentile_bootstrap_ci,
    ranks_with_ties,
    wilson_interval,
    win_matrix,
)

TABLES = ("main", "metrics", "emotions", "transfer", "ablation", "tournament", "headroom")
REQUIRED_COLUMNS = ("episode_id", "task_id", "split", "domain", "persona", "focal_agent", "counterparty_agent",
                    "ending_name", "utility", "rounds", "turns")
ANCHOR = "vanilla-slm"
WIN_UTILITY = 0.5  # a focal policy wins a game above this utility, loses below, ties at it
BT_PRIOR = 1.0  # virtual tied games per pair, so a policy that won every game keeps a finite rating
OVERALL = "overall"


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval; renders as ``0.512 [0.480, 0.544]``."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{_number(self.value)} [{_number(self.low)}, {_number(self.high)}]"


@dataclass(frozen=True)
class Table:
    """A rendered-agnostic result table: ``rows`` of cells (str, int, float, ``Estimate`` or None)."""

    name: str
    columns: list[str]
    rows: list[list]
    notes: str = ""
    meta: dict = field(default_factory=dict)

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + (f"\n\n{self.notes}\n" if self.notes else "\n")

    def to_csv(self) -> str:
        """Estimates expand into ``col``, ``col_low``, ``col_high`` so the file parses back to numbers."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        estimate_columns = {i for row in self.rows for i, c in enumerate(row) if isinstance(c, Estimate)}
        header = []
        for i, name in enumerate(self.columns):
            header += [name, f"{name}_low", f"{name}_high"] if i in estimate_columns else [name]
        writer.writerow(header)
        for row in self.rows:
            cells = []
            for i, c in enumerate(row):
                if i in estimate_columns:
                    cells += [_raw(c.value), _raw(c.low), _raw(c.high)] if isinstance(c, Estimate) else [_raw(c), "", ""]
                else:
                    cells.append(_raw(c))
            writer.writerow(cells)
        return buffer.getvalue()

    def to_json(self) -> str:
        def plain(c):
            if isinstance(c, Estimate):
                return {"value": plain(c.value), "low": plain(c.low), "high": plain(c.high)}
            if isinstance(c, float) and not math.isfinite(c):
                return None
            return c

        return json.dumps({"table": self.name, "columns": self.columns, "notes": self.notes, **self.meta,
                           "rows": [{k: plain(v) for k, v in r.items()} for r in self.records()]}, indent=2)

    def to_latex(self) -> str:
        lines = [r"\begin{tabular}{" + "l" * len(self.columns) + "}", r"\toprule",
                 " & ".join(_latex(c) for c in self.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex(_cell(c)) for c in row) + r" \\" for row in self.rows]
        return "\n".join([*lines, r"\bottomrule", r"\end{tabular}"]) + "\n"

    def render(self, fmt: str) -> str:
        formats = {"md": self.to_markdown, "markdown": self.to_markdown, "csv": self.to_csv,
                   "json": self.to_json, "latex": self.to_latex}
        if fmt not in formats:
            raise InputError(f"unknown format {fmt!r}; expected one of: md, csv, json, latex")
        return formats[fmt]()


def _number(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _cell(c) -> str:
    if c is None:
        return "–"
    if isinstance(c, float):
        return _number(c)
    return str(c)


def _raw(c) -> str:
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return ""
    return repr(c) if isinstance(c, float) else str(c)


LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


# ── reading ──────────────────────────────────────────────────────────────────────────────────────

def _connect(paths, policy: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    source = results_source(con, paths, REQUIRED_COLUMNS, policy)  # literal files, checked (leaderboard.results)
    relabel = "" if policy is None else " REPLACE ('" + policy.replace("'", "''") + "' AS focal_agent)"
    con.sql(f"CREATE VIEW raw0 AS SELECT *{relabel} FROM {source}")
    # how the policy stated its moves (evaluation provenance); results without the column: unknown
    protocol = "" if "protocol" in con.sql("SELECT * FROM raw0 LIMIT 0").columns else ", NULL::VARCHAR AS protocol"
    con.sql(f"CREATE VIEW raw AS SELECT *{protocol} FROM raw0")
    con.sql("CREATE VIEW episodes AS SELECT * FROM raw WHERE ending_name IS DISTINCT FROM 'error'")
    return con


def _protocols(con) -> dict[str, str]:
    """Per policy, the action protocol(s) its episodes were played with (``–`` where not recorded)."""
    return dict(con.sql("SELECT focal_agent, coalesce(string_agg(DISTINCT protocol, '+' ORDER BY protocol), '–') "
                        "FROM raw GROUP BY 1").fetchall())


def _errors(con) -> dict[str, int]:
    return dict(con.sql("SELECT focal_agent, count(*) FROM raw WHERE ending_name = 'error' GROUP BY 1").fetchall())


def _grouped_utilities(con, keys: str, where: str = "TRUE") -> list[tuple]:
    """``(key values…, utilities array)`` per group, utilities gathered by DuckDB as one list each."""
    arrow = con.sql(f"SELECT {keys}, list(utility) AS u FROM episodes WHERE {where} GROUP BY ALL "
                    "ORDER BY ALL").to_arrow_table()
    key_columns = [arrow.column(i).to_pylist() for i in range(arrow.num_columns - 1)]
    lists = arrow.column("u").combine_chunks()
    flat, offsets = lists.values.to_numpy(zero_copy_only=False), lists.offsets.to_numpy()
    return [(*(k[i] for k in key_columns), flat[offsets[i]:offsets[i + 1]]) for i in range(arrow.num_rows)]


def _utility_estimates(groups: list[np.ndarray], bootstrap: int, seed: int) -> list[Estimate]:
    if not groups:  # e.g. the emotions table of a policy that never declared an emotion
        return []
    bounds = percentile_bootstrap_ci(groups, n_resamples=bootstrap, seed=seed)
    return [Estimate(float(np.mean(g)) if len(g) else math.nan, float(lo), float(hi))
            for g, (lo, hi) in zip(groups, bounds, strict=True)]


def _rate(successes: int, n: int) -> Estimate:
    low, high = wilson_interval(successes, n)
    return Estimate(successes / n if n else math.nan, low, high)


def _policy_domain_utilities(con) -> tuple[list[str], list[str], dict[tuple[str, str], np.ndarray]]:
    groups = {(p, d): u for p, d, u in _grouped_utilities(con, "focal_agent, domain")}
    policies = sorted({p for p, _ in groups})
    domains = sorted({d for _, d in groups})
    for policy in policies:
        groups[policy, OVERALL] = np.concatenate([u for (p, _), u in groups.items() if p == policy])
    return policies, domains, groups


# ── tables ───────────────────────────────────────────────────────────────────────────────────────

def main_table(con, bootstrap: int, seed: int) -> Table:
    policies, domains, groups = _policy_domain_utilities(con)
    keys = [(p, d) for p in policies for d in [*domains, OVERALL] if (p, d) in groups]
    estimates = dict(zip(keys, _utility_estimates([groups[k] for k in keys], bootstrap, seed), strict=True))
    overall = [estimates[p, OVERALL] for p in policies]
    ranks = ranks_with_ties([e.value for e in overall], [e.low for e in overall], [e.high for e in overall])
    errors, protocols = _errors(con), _protocols(con)
    rows = [[rank, policy, protocols.get(policy), *(estimates.get((policy, d)) for d in domains),
             estimates[policy, OVERALL], len(groups[policy, OVERALL]), errors.get(policy, 0)]
            for rank, policy in zip(ranks, policies, strict=True)]
    rows.sort(key=lambda r: (r[0], -r[-3].value, r[1]))
    return Table("main", ["rank", "policy", "protocol", *domains, OVERALL, "n", "errors"], rows,
                 notes=f"Mean utility [{bootstrap}-resample percentile bootstrap 95% CI]; rank ties where the CI "
                       "overlaps the tier leader's; error episodes excluded and counted.")


def metrics_table(con, bootstrap: int, seed: int) -> Table:
    policies, domains, groups = _policy_domain_utilities(con)
    counts = {(p, d): (a, w, r) for p, d, a, w, r in con.sql(
        "SELECT focal_agent, domain, count_if(ending_name = 'agreement'), count_if(ending_name = 'walkaway'), "
        "sum(rounds) FROM episodes GROUP BY ALL").fetchall()}
    invalid = {(p, d): (m, n) for p, d, m, n in con.sql(
        "SELECT focal_agent, domain, count_if(t.offer_status = 'invalid'), count(*) "
        "FROM (SELECT focal_agent, domain, UNNEST(turns) AS t FROM episodes) WHERE t.role = 'focal' "
        "GROUP BY ALL").fetchall()}
    fidelity = {(p, d): (m, n) for p, d, m, n in con.sql(
        "SELECT focal_agent, domain, count_if(t.perceived_emotion_name = t.declared_emotion_name), count(*) "
        "FROM (SELECT focal_agent, domain, UNNEST(turns) AS t FROM episodes) "
        "WHERE t.role = 'focal' AND t.declared_emotion_name IS NOT NULL GROUP BY ALL").fetchall()}
    for table in (counts, fidelity, invalid):
        for policy in policies:
            parts = [v for (p, _), v in table.items() if p == policy]
            table[policy, OVERALL] = tuple(sum(x) for x in zip(*parts, strict=True)) if parts else None
    keys = [(p, d) for p in policies for d in [*domains, OVERALL] if (p, d) in groups]
    utilities = _utility_estimates([groups[k] for k in keys], bootstrap, seed)
    protocols = _protocols(con)
    breakdowns = {(p, d): n for p, d, n in con.sql(
        "SELECT focal_agent, domain, count(*) FROM episodes WHERE ending_name = 'breakdown' GROUP BY ALL").fetchall()}
    for policy in policies:
        breakdowns[policy, OVERALL] = sum(n for (p, _), n in list(breakdowns.items()) if p == policy)
    errors = {(p, d): n for p, d, n in con.sql(
        "SELECT focal_agent, domain, count(*) FROM raw WHERE ending_name = 'error' GROUP BY ALL").fetchall()}
    rows = []
    for (policy, domain), utility in zip(keys, utilities, strict=True):
        n = len(groups[policy, domain])
        agreements, walkaways, rounds = counts[policy, domain]
        matches, declared = fidelity.get((policy, domain)) or (0, 0)
        bad_moves, moves = invalid.get((policy, domain)) or (0, 0)
        domain_errors = (sum(v for (p, _), v in errors.items() if p == policy) if domain == OVERALL
                         else errors.get((policy, domain), 0))
        rows.append([policy, protocols.get(policy), domain, n, domain_errors, utility, _rate(agreements, n),
                     _rate(walkaways, n), _rate(breakdowns.get((policy, domain), 0), n),
                     bad_moves / moves if moves else None, rounds / n, matches / declared if declared else None])
    return Table("metrics", ["policy", "protocol", "domain", "n", "errors", "utility", "agreement", "walkaway",
                             "breakdown", "invalid_moves", "rounds", "fidelity"], rows,
                 notes="Utility: mean [bootstrap 95% CI]; agreement/walk-away/breakdown: rate of episodes [Wilson "
                       "95%]; invalid_moves: share of focal moves that broke the action protocol; fidelity: share "
                       "of declared focal emotions perceived as declared.")


def emotions_table(con, bootstrap: int, seed: int, mode: str = "auto") -> Table:
    declared = ("list_distinct(list_transform(list_filter(turns, lambda t: t.role = 'focal' AND "
                "t.declared_emotion_name IS NOT NULL), lambda t: t.declared_emotion_name))")
    fixed = f"(SELECT *, {declared}[1] AS emotion FROM episodes WHERE len({declared}) = 1)"
    if mode == "auto":
        mode = "fixed" if con.sql(f"SELECT count(*) FROM {fixed}").fetchall()[0][0] else "per-turn"
    if mode == "fixed":
        con.sql(f"CREATE OR REPLACE TEMP VIEW by_emotion AS SELECT emotion, utility, ending_name, turns FROM {fixed}")
    elif mode == "per-turn":
        con.sql("CREATE OR REPLACE TEMP VIEW by_emotion AS SELECT t.declared_emotion_name AS emotion, utility, "
                "ending_name, [t] AS turns FROM (SELECT utility, ending_name, UNNEST(turns) AS t FROM episodes) "
                "WHERE t.role = 'focal' AND t.declared_emotion_name IS NOT NULL")
    else:
        raise InputError(f"unknown emotions mode {mode!r}; expected auto, fixed or per-turn")
    grouped = con.sql("SELECT emotion, list(utility) AS u, count(*), count_if(ending_name = 'agreement'), "
                    "count_if(ending_name = 'walkaway') FROM by_emotion GROUP BY 1 ORDER BY 1").fetchall()
    fidelity = dict(con.sql(
        "SELECT emotion, avg((t.perceived_emotion_name = t.declared_emotion_name)::INT) FROM "
        "(SELECT emotion, UNNEST(turns) AS t FROM by_emotion) WHERE t.role = 'focal' GROUP BY 1").fetchall())
    utilities = _utility_estimates([np.asarray(r[1], dtype=np.float64) for r in grouped], bootstrap, seed)
    rows = [[emotion, mode, n, utility, _rate(agree, n), _rate(walk, n), fidelity.get(emotion)]
            for (emotion, _, n, agree, walk), utility in zip(grouped, utilities, strict=True)]
    rows.sort(key=lambda r: -r[3].value)
    unit = "episodes" if mode == "fixed" else "focal turns (each credited with its episode's outcome)"
    return Table("emotions", ["emotion", "method", "n", "utility", "agreement", "walkaway", "fidelity"], rows,
                 notes=f"Per declared focal emotion over {unit}; error episodes excluded.")


def transfer_table(con, bootstrap: int, seed: int, by: str = "split") -> Table:
    if by not in ("split", "counterparty_agent", "persona", "domain"):
        raise InputError(f"unknown transfer axis {by!r}; expected split, counterparty_agent, persona or domain")
    groups = {(p, v): u for p, v, u in _grouped_utilities(con, f"focal_agent, {by}")}
    policies, values = sorted({p for p, _ in groups}), sorted({v for _, v in groups})
    keys = sorted(groups)
    estimates = dict(zip(keys, _utility_estimates([groups[k] for k in keys], bootstrap, seed), strict=True))
    protocols = _protocols(con)
    rows = [[policy, protocols.get(policy), *(estimates.get((policy, v)) for v in values)] for policy in policies]
    return Table("transfer", ["policy", "protocol", *values], rows, notes=f"Mean utility [bootstrap 95% CI] by {by}.")


def _anchor(policies: Sequence[str]) -> str:
    for policy in policies:
        if policy == ANCHOR or policy.rsplit(":", 1)[-1] == ANCHOR:
            return policy
    return policies[0]


# The paper's ablations (DESIGN.md section 9): emotion conditioning, IQL vs random selection, SFT vs
# SFT + JPO, and emotion selection with the phrasing bank held fixed.
PAPER_ABLATIONS = (("emodistill-sft", "emotion-free-sft"), ("iql-only", "random-emotion"),
                   ("emodistill", "emodistill-sft"), ("iql-only", "vanilla-slm"), ("iql-teacher", "teacher"))


def ablation_table(con, bootstrap: int, seed: int, pairs: Iterable[tuple[str, str]] | None = None) -> Table:
    per_task: dict[str, dict[tuple[str, str], float]] = {}
    for policy, split, task_id, utility in con.sql(
            "SELECT focal_agent, split, task_id, avg(utility) FROM episodes GROUP BY ALL").fetchall():
        per_task.setdefault(policy, {})[split, task_id] = utility
    policies = sorted(per_task)
    if pairs is None:  # the paper's pairs that are present, else every policy against the anchor
        pairs = [(a, b) for a, b in PAPER_ABLATIONS if a in per_task and b in per_task]
        if not pairs:
            anchor = _anchor(policies)
            pairs = [(p, anchor) for p in policies if p != anchor]
    rows, differences = [], []
    for policy, baseline in pairs:
        for name in (policy, baseline):
            if name not in per_task:
                raise InputError(f"policy {name!r} has no scored episodes; expected one of: {', '.join(policies)}")
        shared = sorted(per_task[policy].keys() & per_task[baseline].keys())
        a = np.array([per_task[policy][t] for t in shared])
        b = np.array([per_task[baseline][t] for t in shared])
        differences.append(a - b)
        rows.append([policy, baseline, len(shared), float(a.mean()) if shared else None,
                     float(b.mean()) if shared else None])
    bounds = percentile_bootstrap_ci(differences, n_resamples=bootstrap, seed=seed)
    for row, d, (low, high) in zip(rows, differences, bounds, strict=True):
        row.append(Estimate(float(d.mean()) if len(d) else math.nan, float(low), float(high)))
    return Table("ablation", ["policy", "baseline", "shared_tasks", "policy_utility", "baseline_utility",
                              "difference"], rows,
                 notes="Difference in mean utility over shared (split, task_id), each task's episodes averaged "
                       "first; paired percentile bootstrap 95% CI resampling tasks.")


def tournament_table(con, bootstrap: int, seed: int, anchor: str | None = None) -> Table:
    games = con.sql(
        f"SELECT focal_agent, counterparty_agent, CASE WHEN ending_name = 'turn_limit' THEN 0.5 "
        f"WHEN utility > {WIN_UTILITY} THEN 1.0 WHEN utility < {WIN_UTILITY} THEN 0.0 ELSE 0.5 END, count(*) "
        "FROM episodes GROUP BY ALL ORDER BY ALL").fetchall()
    if not games:
        raise InputError("no scored episodes; the tournament needs at least one game")
    focal_names = sorted({g[0] for g in games})
    players = focal_names + sorted({g[1] for g in games} - set(focal_names))
    index = {name: i for i, name in enumerate(players)}
    first = np.array([index[g[0]] for g in games])
    second = np.array([index[g[1]] for g in games])
    score = np.array([g[2] for g in games], dtype=np.float64)
    counts = np.array([g[3] for g in games], dtype=np.float64)
    anchor = anchor or _anchor(players)
    if anchor not in index:
        raise InputError(f"anchor {anchor!r} played no game; expected one of: {', '.join(players)}")
    reference = index[anchor]
    ratings = bradley_terry(win_matrix(first, second, score, len(players), weights=counts), reference=reference,
                            prior=BT_PRIOR)
    bounds = bootstrap_bradley_terry(first, second, score, len(players), reference=reference, prior=BT_PRIOR,
                                     n_resamples=bootstrap, seed=seed, counts=counts)
    ranks = ranks_with_ties(ratings, bounds[:, 0], bounds[:, 1])
    rows = []
    for i, name in enumerate(players):
        outcomes = {result: int(counts[(first == i) & (score == s)].sum() + counts[(second == i) & (score == 1 - s)].sum())
                    for result, s in (("win", 1.0), ("tie", 0.5), ("loss", 0.0))}
        rows.append([ranks[i], name, sum(outcomes.values()), outcomes["win"], outcomes["tie"], outcomes["loss"],
                     Estimate(float(ratings[i]), float(bounds[i, 0]), float(bounds[i, 1]))])
    rows.sort(key=lambda r: (r[0], -r[-1].value, r[1]))
    return Table("tournament", ["rank", "agent", "games", "wins", "ties", "losses", "rating"], rows,
                 notes=f"Game = episode, focal_agent vs counterparty_agent: the focal side wins when utility > "
                       f"{WIN_UTILITY}, loses when < {WIN_UTILITY}, ties at {WIN_UTILITY} or a turn_limit ending. "
                       f"Bradley–Terry log-strength (ties as half a win, {BT_PRIOR:g} virtual tied game per pair), "
                       f"0 = {anchor}; bootstrap 95% CI over games.",
                 meta={"anchor": anchor})


HEADROOM_RANDOM, HEADROOM_REFERENCE = "teacher", "persona-best-fixed-teacher"
ALL_PERSONAS = "all"


def gap_closed(policy: float, random: float, reference: float) -> float | None:
    """Share of the random → reference gap a policy closes: ``(U − U_random) / (U_reference − U_random)``;
    None when the reference does not beat random (no gap to close)."""
    gap = reference - random
    return (policy - random) / gap if gap > 1e-9 else None


def headroom_table(con, bootstrap: int, seed: int, random: str = HEADROOM_RANDOM,
                   reference: str = HEADROOM_REFERENCE, policies: Sequence[str] | None = None) -> Table:
    """Per split and persona: utility of ``random``, of each policy, and of ``reference`` (an upper line that
    may know the persona), with the share of the random → reference gap each policy closes."""
    groups = {(split, persona, p): u for split, persona, p, u in
              _grouped_utilities(con, "split, persona, focal_agent")}
    present = sorted({p for _, _, p in groups})
    for name in (random, reference):
        if name not in present:
            raise InputError(f"the headroom table needs episodes of {name!r} (random and reference); the files hold: "
                             f"{', '.join(present)}")
    middle = [p for p in (policies or present) if p not in (random, reference)]
    missing = [p for p in middle if p not in present]
    if missing:
        raise InputError(f"no episodes of {', '.join(missing)}; the files hold: {', '.join(present)}")
    order = [random, *middle, reference]
    for split in sorted({s for s, _, _ in groups}):
        for policy in order:
            parts = [u for (s, _, p), u in groups.items() if s == split and p == policy]
            if parts:
                groups[split, ALL_PERSONAS, policy] = np.concatenate(parts)
    cells = sorted(groups)
    estimates = dict(zip(cells, _utility_estimates([groups[k] for k in cells], bootstrap, seed), strict=True))
    rows = []
    for split in sorted({s for s, _, _ in groups}):
        personas = sorted({q for s, q, _ in groups if s == split and q != ALL_PERSONAS}) + [ALL_PERSONAS]
        for persona in personas:
            row_estimates = {p: estimates.get((split, persona, p)) for p in order}
            base, top = row_estimates[random], row_estimates[reference]
            row = [split, persona, len(groups.get((split, persona, random), ())), base]
            for policy in middle:
                estimate = row_estimates[policy]
                row += [estimate, gap_closed(estimate.value, base.value, top.value)
                        if estimate is not None and base is not None and top is not None else None]
            rows.append([*row, top])
    columns = ["split", "persona", "n", random]
    for policy in middle:
        columns += [policy, f"{policy} gap closed"]
    return Table("headroom", [*columns, reference], rows,
                 notes=f"Mean utility [bootstrap 95% CI] per split and persona. 'gap closed' = (policy − {random}) / "
                       f"({reference} − {random}): 0 is no better than random, 1 matches the reference. The reference "
                       "may know the persona: an upper line, not a policy.")


BUILDERS = {"main": main_table, "metrics": metrics_table, "emotions": emotions_table, "transfer": transfer_table,
            "ablation": ablation_table, "tournament": tournament_table, "headroom": headroom_table}


def score(paths: Sequence[str | Path] | str | Path, table: str = "main", bootstrap: int = 10000, seed: int = 0,
          policy: str | None = None, **options) -> Table:
    """Score episodes-schema Parquet files into one table (see the module docstring for each table).

    ``policy`` scores every episode as that one policy whatever its ``focal_agent`` (a leaderboard
    entry is one policy). ``options`` go to the table: ``by=`` (transfer), ``pairs=`` (ablation),
    ``anchor=`` (tournament), ``mode=`` (emotions), ``random=``/``reference=``/``policies=`` (headroom).
    """
    if table not in BUILDERS:
        raise InputError(f"unknown table {table!r}; expected one of: {', '.join(TABLES)}")
    if bootstrap < 1:
        raise InputError(f"bootstrap must be at least 1, got {bootstrap}")
    con = _connect(paths, policy)
    try:
        if not con.sql("SELECT count(*) FROM episodes").fetchall()[0][0]:
            raise InputError("no scored episodes (every episode is missing or ended in error)")
        return BUILDERS[table](con, bootstrap, seed, **options)
    finally:
        con.close()
