"""The static leaderboard site (DESIGN.md section 9), rebuilt from the board's accepted entries.

``index.html`` ranks every entry by overall utility with 95% bootstrap CIs and links one page per entry
(``entries/NAME.html``); ``plots/`` holds SVG figures of utility by domain and per-emotion utility. The
pages are plain files: they open from ``file://`` with no server, fetch nothing, and run one small inline
script (sortable columns; ``index.html#sort=KEY[:asc|desc]`` applies a sort on load).

Each entry is scored on its own with ``scoring.score(..., policy=NAME)`` and the same seed, so an
entry's numbers do not move when another joins; ranks tie where overall CIs overlap, by the main
table's rule (``stats.ranks_with_ties``). Every user-provided string is escaped, a Content-Security-Policy
lets only the page's own script run, and the same board gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from emoneg_bench import __version__
from emoneg_bench.errors import InputError
from emoneg_bench.limits import read_json
from emoneg_bench.negotiation import Ending

from .board import ENTRY_METADATA
from .scoring import OVERALL, Estimate, score
from .stats import ranks_with_ties
from .submission import EPISODES

GENERATOR = "emoneg-bench leaderboard site"
PLOTS = {"domains": "plots/utility-by-domain.svg", "emotions": "plots/utility-by-emotion.svg"}
METADATA_LABELS = {"model": "Model", "description": "Description", "contact": "Contact", "licence": "Licence",
                   "seeds": "Seeds", "training_data": "Training data", "release": "Release",
                   "release_version": "Release version", "episodes": "Episodes",
                   "episodes_sha256": "Episodes SHA-256", "verified_by": "Verified by", "scores": "Scores"}
LEGEND_CHARS = 32  # entry names are cut to this length in plot legends
MARKERS = "osD^v<>ph*"


@dataclass(frozen=True)
class Entry:
    """One scored board entry: ``name`` is its folder (page file name and policy label)."""

    name: str
    metadata: dict
    metrics: dict[str, dict]  # domain (and "overall") → the scoring metrics row
    emotions: list[dict]  # the scoring emotions rows, per-turn association
    endings: Counter  # (domain, ending_name) → episodes

    @property
    def title(self) -> str:
        return str(self.metadata.get("name") or self.name)

    @property
    def utility(self) -> Estimate:
        return self.metrics[OVERALL]["utility"]


def build_site(board: str | Path, out: str | Path, *, bootstrap: int = 10000, seed: int = 0) -> Path:
    """Score every entry of ``board`` and write the site to ``out`` (replacing an earlier build there);
    returns the path of ``index.html``."""
    board, out = Path(board), Path(out)
    _check_output(board, out)
    entries = [_score_entry(name, metadata, path, bootstrap, seed) for name, metadata, path in read_board(board)]
    ranks = ranks_with_ties([e.utility.value for e in entries], [e.utility.low for e in entries],
                            [e.utility.high for e in entries])
    ranked = sorted(zip(ranks, entries, strict=True), key=lambda r: (r[0], -r[1].utility.value, r[1].name))
    domains = sorted({d for e in entries for d in e.metrics} - {OVERALL})

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        staging.chmod(0o755)
        (staging / "plots").mkdir()
        (staging / "entries").mkdir()
        plot_utility_by_domain([e for _, e in ranked], domains, staging / PLOTS["domains"])
        emotion_plot = plot_utility_by_emotion([e for _, e in ranked], staging / PLOTS["emotions"])
        (staging / "index.html").write_text(index_page(ranked, domains, emotion_plot, bootstrap, seed))
        for rank, entry in ranked:
            page = entry_page(entry, rank, len(ranked), bootstrap)
            (staging / "entries" / f"{entry.name}.html").write_text(page)
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / "index.html"


# ── reading and scoring ──────────────────────────────────────────────────────────────────────────

def read_board(board: Path) -> list[tuple[str, dict, Path]]:
    """``(folder name, entry.json, episodes path)`` per entry, by folder name; folders being written
    (names starting with a dot) are skipped."""
    if not board.is_dir():
        raise InputError(f"leaderboard folder {board} does not exist or is not a folder; expected the board "
                         "that `emoneg leaderboard submit` writes (default leaderboard/submissions)")
    entries = []
    for folder in sorted(p for p in board.iterdir() if p.is_dir() and not p.name.startswith(".")):
        missing = [name for name in (ENTRY_METADATA, EPISODES) if not (folder / name).is_file()]
        if missing:
            raise InputError(f"leaderboard entry {folder} has no {' or '.join(missing)}; every entry holds "
                             f"{ENTRY_METADATA} and {EPISODES} as `emoneg leaderboard submit` writes them")
        metadata = read_json(folder / ENTRY_METADATA, "run metadata")
        if not isinstance(metadata, dict):
            raise InputError("expected a JSON object of the entry's metadata", file=str(folder / ENTRY_METADATA))
        entries.append((folder.name, metadata, folder / EPISODES))
    if not entries:
        raise InputError(f"leaderboard folder {board} has no entries; add one with `emoneg leaderboard submit "
                         f"SUBMISSION --release RELEASE --board {board}`")
    return entries


def _score_entry(name: str, metadata: dict, episodes: Path, bootstrap: int, seed: int) -> Entry:
    import pyarrow.parquet as pq

    metrics = {r["domain"]: r for r in score([episodes], "metrics", bootstrap, seed, policy=name).records()}
    emotions = score([episodes], "emotions", bootstrap, seed, mode="per-turn").records()
    columns = pq.read_table(episodes, columns=["domain", "ending_name"]).to_pydict()
    endings = Counter(zip(columns["domain"], columns["ending_name"], strict=True))
    return Entry(name, metadata, metrics, emotions, endings)


def _check_output(board: Path, out: Path) -> None:
    """Refuse to replace a folder that is not an earlier build, or one that holds (or is held by) the board."""
    if out.resolve().is_relative_to(board.resolve()) or board.resolve().is_relative_to(out.resolve()):
        raise InputError(f"the site folder {out} and the leaderboard folder {board} must not contain one another; "
                         "choose another --out")
    if not out.exists():
        return
    index = out / "index.html"
    earlier_build = index.is_file() and f'content="{GENERATOR}' in index.read_text(errors="replace")
    if not out.is_dir() or (any(out.iterdir()) and not earlier_build):
        raise InputError(f"{out} exists and is not a leaderboard site built by emoneg; choose a new or empty "
                         "folder")


# ── plots ────────────────────────────────────────────────────────────────────────────────────────

def _figure(width: float, height: float):
    """A pyplot-free matplotlib figure (no global backend state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save_svg(figure, path: Path) -> None:
    """Deterministic SVG: fixed id salt, no date, text kept as text (fonts from the browser)."""
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": GENERATOR, "svg.fonttype": "none"}):
        figure.savefig(path, format="svg", metadata={"Date": None})


def _legend_label(entry: Entry) -> str:
    title = entry.title
    return title if len(title) <= LEGEND_CHARS else title[:LEGEND_CHARS - 1] + "…"


def _plot_rc():
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False, "font.size": 9, "axes.spines.top": False,
                                  "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3})


def _series(axes, entries: list[Entry], positions, estimates, vertical: bool) -> None:
    """One error-bar series per entry, dodged around each category position."""
    width = 0.8 / len(entries)
    for i, (entry, values) in enumerate(zip(entries, estimates, strict=True)):
        shown = [(p + (i - (len(entries) - 1) / 2) * width, e) for p, e in zip(positions, values, strict=True)
                 if e is not None and not math.isnan(e.value)]
        if not shown:
            continue
        where = [p for p, _ in shown]
        value = [e.value for _, e in shown]
        error = [[e.value - e.low for _, e in shown], [e.high - e.value for _, e in shown]]
        style = dict(fmt=MARKERS[i % len(MARKERS)], color=f"C{i % 10}", capsize=2, markersize=4,
                     label=_legend_label(entry))
        if vertical:
            axes.errorbar(where, value, yerr=error, **style)
        else:
            axes.errorbar(value, where, xerr=error, **style)


def plot_utility_by_domain(entries: list[Entry], domains: list[str], path: Path) -> None:
    """Mean utility ± 95% CI per domain and overall, one series per entry (in rank order)."""
    columns = [*domains, OVERALL]
    with _plot_rc():
        figure = _figure(max(6.0, 1.2 * len(columns) + 2.5), 3.6)
        axes = figure.add_subplot()
        _series(axes, entries, range(len(columns)),
                [[e.metrics.get(c, {}).get("utility") for c in columns] for e in entries], vertical=True)
        axes.set_xticks(range(len(columns)), columns)
        axes.set_ylabel("utility (mean, 95% CI)")
        figure.legend(loc="outside right upper", frameon=False)
        _save_svg(figure, path)


def plot_utility_by_emotion(entries: list[Entry], path: Path) -> bool:
    """Mean utility ± 95% CI per declared focal emotion, one series per entry; False (no file) when no
    entry declared an emotion."""
    emotions = sorted({r["emotion"] for e in entries for r in e.emotions}, reverse=True)
    if not emotions:
        return False
    with _plot_rc():
        figure = _figure(7.5, 1.2 + len(emotions) * (0.12 + 0.06 * min(len(entries), 6)))
        axes = figure.add_subplot()
        by_entry = [{r["emotion"]: r["utility"] for r in e.emotions} for e in entries]
        _series(axes, entries, range(len(emotions)), [[u.get(m) for m in emotions] for u in by_entry],
                vertical=False)
        axes.set_yticks(range(len(emotions)), emotions)
        axes.set_xlabel("utility of the episode (mean over focal turns declaring the emotion, 95% CI)")
        figure.legend(loc="outside right upper", frameon=False)
        _save_svg(figure, path)
    return True


# ── HTML ─────────────────────────────────────────────────────────────────────────────────────────

STYLE = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d9dee7; --band: #f4f6f9; --accent: #2557a7; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 80rem; padding: 1.5rem 1.25rem 3rem; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; }
a { color: var(--accent); }
.lead, .note, figcaption, footer { color: var(--muted); max-width: 62rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: .4rem .6rem; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top;
         white-space: nowrap; }
th { background: var(--band); font-weight: 600; }
.text { text-align: left; white-space: normal; }
tbody tr:hover { background: var(--band); }
.ci { display: block; font-size: .78em; color: var(--muted); }
th button { font: inherit; color: inherit; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: .7em; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: .7em; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.2rem; }
dt { font-weight: 600; }
dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
footer { margin-top: 3rem; font-size: .85em; }
"""

SORT_SCRIPT = """
(function () {
  var table = document.getElementById("leaderboard");
  var body = table.tBodies[0], headers = table.tHead.rows[0].cells;
  function sortBy(key, direction) {
    var column = -1;
    for (var i = 0; i < headers.length; i++) { if (headers[i].dataset.key === key) { column = i; } }
    if (column < 0) { return; }
    var header = headers[column], numeric = header.dataset.type === "number";
    direction = direction || header.dataset.order;
    var sign = direction === "asc" ? 1 : -1;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var order = Number(a.dataset.position) - Number(b.dataset.position);
      if (x === "" || y === "") { return (x === "") - (y === "") || order; }
      var difference = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return sign * difference || order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var j = 0; j < headers.length; j++) { headers[j].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", direction === "asc" ? "ascending" : "descending");
    table.dataset.sortedBy = key + ":" + direction;
  }
  Array.prototype.forEach.call(headers, function (header) {
    header.querySelector("button").addEventListener("click", function () {
      var key = header.dataset.key, current = (table.dataset.sortedBy || "").split(":");
      var direction = current[0] === key ? (current[1] === "asc" ? "desc" : "asc") : header.dataset.order;
      sortBy(key, direction);
      try { history.replaceState(null, "", "#sort=" + encodeURIComponent(key) + ":" + direction); } catch (e) {}
    });
  });
  function fromHash() {
    var match = /^#sort=([^:]+)(?::(asc|desc))?$/.exec(location.hash);
    if (match) { sortBy(decodeURIComponent(match[1]), match[2]); }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def page(title: str, body: str, script: str = "") -> str:
    """A whole HTML document: embedded style, and a policy that runs only ``script`` and loads only
    images from the site's own folder."""
    scripts = _csp_hash(script) if script else "'none'"
    policy = (f"default-src 'none'; img-src 'self'; style-src {_csp_hash(STYLE)}; script-src {scripts}; "
              "base-uri 'none'; form-action 'none'")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="{GENERATOR} (emoneg-bench {_e(__version__)})">\n'
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
            f"<footer>Built by emoneg-bench {_e(__version__)} from the replayed episodes of each entry.</footer>\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body>\n</html>\n")


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _estimate_cell(estimate: Estimate | None) -> str:
    """The value with its interval underneath; ``data-value`` carries the number for sorting."""
    if estimate is None or math.isnan(estimate.value):
        return '<td data-value="">–</td>'
    low, high = _number(estimate.low), _number(estimate.high)
    return (f'<td data-value="{estimate.value:.6f}" data-low="{estimate.low:.6f}" data-high="{estimate.high:.6f}" '
            f'title="95% CI {low} to {high}">{_number(estimate.value)}<span class="ci">[{low}, {high}]</span></td>')


def _number_cell(value: float | int | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td data-value="">–</td>'
    shown = str(value) if isinstance(value, int) else _number(value, digits)
    return f'<td data-value="{value if isinstance(value, int) else f"{value:.6f}"}">{shown}</td>'


def _table(table_id: str, headers: list[str], rows: list[list[str]]) -> str:
    """A plain table of pre-rendered cells; the first column is text, the rest numbers."""
    head = "".join(f'<th class="text">{_e(h)}</th>' if i == 0 else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    body = "\n".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return (f'<div class="scroll"><table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table></div>")


def _releases(entries: list[Entry]) -> str:
    names = sorted({str(e.metadata.get("release") or e.metadata.get("release_version") or "unknown")
                    for e in entries})
    return ", ".join(f"<strong>{_e(n)}</strong>" for n in names)


def index_page(ranked: list[tuple[int, Entry]], domains: list[str], emotion_plot: bool, bootstrap: int,
               seed: int) -> str:
    entries = [e for _, e in ranked]
    rank_counts = Counter(rank for rank, _ in ranked)
    columns = [("rank", "#", "number", "asc"), ("entry", "Entry", "text", "asc"),
               *((d, d, "number", "desc") for d in domains), (OVERALL, "Overall", "number", "desc"),
               ("agreement", "Agreement", "number", "desc"), ("rounds", "Rounds", "number", "asc"),
               ("episodes", "Episodes", "number", "desc")]
    head = "".join(f'<th data-key="{_e(key)}" data-type="{kind}" data-order="{order}"'
                   + (' class="text"' if kind == "text" else "")
                   + f'><button type="button">{_e(label)}</button></th>' for key, label, kind, order in columns)
    rows = []
    for position, (rank, entry) in enumerate(ranked):
        overall = entry.metrics[OVERALL]
        tied = rank_counts[rank] > 1
        rank_cell = (f'<td data-value="{rank}"' + (' title="tied: the 95% CIs overlap"' if tied else "")
                     + f'>{"=" if tied else ""}{rank}</td>')
        cells = [rank_cell,
                 f'<td class="text" data-value="{_e(entry.title.casefold())}">'
                 f'<a href="entries/{_e(quote(entry.name))}.html">{_e(entry.title)}</a>'
                 f'<span class="ci">{_e(entry.metadata.get("model", ""))}</span></td>',
                 *(_estimate_cell(entry.metrics.get(d, {}).get("utility")) for d in domains),
                 _estimate_cell(overall["utility"]), _estimate_cell(overall["agreement"]),
                 _number_cell(overall["rounds"], 1), _number_cell(overall["n"])]
        rows.append(f'<tr data-entry="{_e(entry.name)}" data-position="{position}">{"".join(cells)}</tr>')
    figures = [f'<figure><img src="{PLOTS["domains"]}" alt="Mean utility with 95% CIs per domain for each entry">'
               "<figcaption>Mean utility per domain and overall, with 95% bootstrap CIs, one series per entry "
               "in rank order.</figcaption></figure>"]
    if emotion_plot:
        figures.append(f'<figure><img src="{PLOTS["emotions"]}" alt="Mean utility per declared emotion for each '
                       'entry"><figcaption>Per-emotion effects: every focal turn that declared an emotion is credited '
                       "with its episode's utility (an association, not a causal effect), with 95% bootstrap CIs "
                       "over turns.</figcaption></figure>")
    else:
        figures.append('<p class="note">No entry declared emotions in its turns, so there is no per-emotion '
                       "plot.</p>")
    body = f"""<header>
<h1>EmoNeg-Bench leaderboard</h1>
<p class="lead">Negotiation policies on the official test tasks of release {_releases(entries)}.
<b>Utility</b> is the focal negotiator's outcome in [0, 1]: where the agreed value falls between the two opening
anchors (1 = its own anchor), 0 without a deal. Cells show the mean over episodes and, below it, the
<b>95% CI</b> (percentile bootstrap, {bootstrap} resamples, seed {seed}); agreement is the share of episodes that
reached a deal (Wilson 95% CI); rounds is the mean number of rounds. Every entry is <b>replay-verified</b>: the
official counterparties were re-run on the submitted messages and all scores recomputed from the replay. Entries
share a rank (=) when their overall CI overlaps that of the best entry in their tier. Click a column header to
sort.</p>
</header>
<main>
<div class="scroll"><table id="leaderboard">
<thead><tr>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table></div>
<h2>Utility by domain</h2>
{figures[0]}
<h2>Per-emotion effects</h2>
{figures[1]}
</main>"""
    return page("EmoNeg-Bench leaderboard", body, SORT_SCRIPT)


def _metadata_value(value) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def entry_page(entry: Entry, rank: int, entries: int, bootstrap: int) -> str:
    metadata = {k: v for k, v in entry.metadata.items() if k != "name"}
    keys = [k for k in METADATA_LABELS if k in metadata] + sorted(k for k in metadata if k not in METADATA_LABELS)
    details = "\n".join(f"<dt>{_e(METADATA_LABELS.get(k, k))}</dt><dd>{_e(_metadata_value(metadata[k]))}</dd>"
                        for k in keys)
    domains = [*sorted(d for d in entry.metrics if d != OVERALL), OVERALL]
    per_domain = _table("domains", ["domain", "episodes", "errors", "utility", "agreement", "walk-away", "rounds",
                                    "fidelity"],
                        [[f'<td class="text">{_e(d)}</td>', _number_cell(r["n"]), _number_cell(r["errors"]),
                          _estimate_cell(r["utility"]), _estimate_cell(r["agreement"]),
                          _estimate_cell(r["walkaway"]), _number_cell(r["rounds"], 1),
                          _number_cell(r["fidelity"])] for d in domains for r in [entry.metrics[d]]])
    known = [str(e) for e in Ending]
    present = {ending for _, ending in entry.endings}
    endings = [e for e in known if e in present] + sorted(present - set(known))
    rows = []
    for domain in domains:
        counts = [sum(n for (d, e), n in entry.endings.items() if e == ending and domain in (OVERALL, d))
                  for ending in endings]
        total = sum(counts)
        rows.append([f'<td class="text">{_e(domain)}</td>',
                     *(f'<td data-value="{n}">{n}<span class="ci">{100 * n / total:.1f}%</span></td>'
                       for n in counts), _number_cell(total)])
    ending_table = _table("endings", ["domain", *endings, "episodes"], rows)
    if entry.emotions:
        emotions = _table("emotions", ["emotion", "focal turns", "utility", "agreement", "fidelity"],
                          [[f'<td class="text">{_e(r["emotion"])}</td>', _number_cell(r["n"]),
                            _estimate_cell(r["utility"]), _estimate_cell(r["agreement"]),
                            _number_cell(r["fidelity"])] for r in entry.emotions])
    else:
        emotions = '<p class="note">This entry declared no emotions in its turns.</p>'
    overall = entry.utility
    body = f"""<p><a href="../index.html">&larr; Leaderboard</a></p>
<header>
<h1>{_e(entry.title)}</h1>
<p class="lead">Rank {rank} of {entries}: overall utility <b>{_number(overall.value)}</b>
(95% CI {_number(overall.low)} to {_number(overall.high)}, {bootstrap} bootstrap resamples), scored from the
replay of {entry.metrics[OVERALL]["n"]} episodes.</p>
</header>
<main>
<h2>Submission</h2>
<dl>
{details}
</dl>
<h2>Per domain</h2>
{per_domain}
<p class="note">Utility: mean [bootstrap 95% CI]; agreement and walk-away: rate [Wilson 95% CI]; fidelity: share
of declared focal emotions that the recognizer perceived as declared.</p>
<h2>Endings</h2>
{ending_table}
<h2>Per-emotion effects</h2>
{emotions}
<p class="note">Each focal turn that declared an emotion is credited with its episode's outcome (an association,
not a causal effect).</p>
</main>"""
    return page(f"{entry.title} | EmoNeg-Bench leaderboard", body)
