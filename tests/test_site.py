"""The static leaderboard site: built from a real board of replay-verified entries, ranked with CIs,
escaped, deterministic, and sortable in a real headless browser (DESIGN.md section 9)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.teacher import TeacherAgent, TeacherTactic
from emoneg_bench.engine import Engine
from emoneg_bench.errors import EmoNegError
from leaderboard.board import submit
from leaderboard.scoring import score
from leaderboard.site import build_site
from leaderboard.submission import load_release_tasks, release_manifest, write_submission

BOOTSTRAP = 200
HOSTILE = "<script>alert(1)</script> & co"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium, chromium-browser or google-chrome on "
                                    "PATH (.ci/run installs chromium with apt-get where it can)")
# Three policies whose overall utilities are far apart: the scripted teacher, an always-angry one, and a
# polite one that concedes little (its name tries to inject a script).
POLICIES = {"random teacher": TeacherAgent("random"), "angry teacher": TeacherAgent("fixed-anger"),
            HOSTILE: TeacherAgent("random:joy+gratitude", TeacherTactic(reservation=(0.6, 0.8)))}


class Page(HTMLParser):
    """What the tests look at in one page: every tag with its attributes, table rows with their cells'
    attributes and text, and links with their text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.rows: list[tuple[dict, list[tuple[dict, str]]]] = []
        self.row_tables: list[str | None] = []  # the id of each row's table
        self._table: str | None = None
        self.links: list[tuple[str, str]] = []
        self._cell: tuple[dict, list[str]] | None = None
        self._link: tuple[str, list[str]] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr":
            self.rows.append((attrs, []))
            self.row_tables.append(self._table)
        elif tag in ("td", "th"):
            self._cell = (attrs, [])
        elif tag == "a":
            self._link = (attrs.get("href", ""), [])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append((self._cell[0], "".join(self._cell[1]).strip()))
            self._cell = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._link[0], "".join(self._link[1])))
            self._link = None

    def handle_data(self, data):
        for part in (self._cell, self._link):
            if part is not None:
                part[1].append(data)

    def table(self, table_id: str, header: bool = False) -> list[list[tuple[dict, str]]]:
        """The cells of each row of one table, its header row first when ``header``."""
        rows = [cells for (_, cells), table in zip(self.rows, self.row_tables, strict=True) if table == table_id]
        return rows if header else rows[1:]

    def entry_rows(self) -> list[tuple[dict, list[tuple[dict, str]]]]:
        return [row for row in self.rows if "data-entry" in row[0]]

    def order(self) -> list[str]:
        return [attrs["data-entry"] for attrs, _ in self.entry_rows()]

    def column(self, key: str) -> list[dict]:
        """The cells' attributes under the header whose ``data-key`` is ``key``."""
        keys = [attrs.get("data-key") for attrs, _ in self.rows[0][1]]
        return [cells[keys.index(key)][0] for _, cells in self.entry_rows()]


def read(path: Path) -> Page:
    return Page(path.read_text())


@pytest.fixture(scope="module")
def release(small_release) -> Path:
    return small_release  # read only: entries are written to their own board


@pytest.fixture(scope="module")
def board(tmp_path_factory, release, recognizer) -> Path:
    """A board of three accepted submissions, each the engine run on the release's test tasks."""
    manifest = release_manifest(release)
    tasks = load_release_tasks(release, "test")
    engine = Engine(recognizer, manifest["builder_config"]["max_turns"])
    folder = tmp_path_factory.mktemp("board-work")
    for i, (name, agent) in enumerate(POLICIES.items()):
        metadata = {"name": name, "contact": "bench@example.org", "model": agent.name,
                    "training_data": manifest["version"], "licence": "apache-2.0", "seeds": [0],
                    "description": "A <b>bold</b> claim\non two lines."}
        submission = write_submission(folder / f"submission-{i}", list(engine.run(tasks, agent, PersonaAgent())),
                                      metadata)
        report, _ = submit(submission, release, folder / "board", recognizer=recognizer)
        assert report.accepted, report.problems
    return folder / "board"


@pytest.fixture(scope="module")
def site(tmp_path_factory, board) -> Path:
    return build_site(board, tmp_path_factory.mktemp("site") / "site", bootstrap=BOOTSTRAP).parent


def overall(board: Path, name: str, table: str = "main"):
    return score([board / name / "episodes.parquet"], table, bootstrap=BOOTSTRAP, policy=name)


def test_index_ranks_entries_by_overall_utility_with_their_bootstrap_cis(site, board):
    index = read(site / "index.html")
    assert index.order() == ["random-teacher", "angry-teacher", "script-alert-1-script-co"]
    assert [cell["data-value"] for cell in index.column("rank")] == ["1", "2", "3"]
    for cell, name in zip(index.column("overall"), index.order(), strict=True):
        expected = overall(board, name).rows[0][-3]  # the main table's overall utility estimate
        assert (cell["data-value"], cell["data-low"], cell["data-high"]) == (
            f"{expected.value:.6f}", f"{expected.low:.6f}", f"{expected.high:.6f}")
        assert expected.low < expected.value < expected.high


def test_index_has_per_domain_utility_agreement_and_rounds_columns(site, board):
    index = read(site / "index.html")
    assert [attrs["data-key"] for attrs, _ in index.rows[0][1]] == [
        "rank", "entry", "debt", "disaster", "hospital", "student", "overall", "agreement", "rounds", "episodes"]
    episodes = pq.read_table(board / "random-teacher" / "episodes.parquet").to_pydict()
    first = {key: index.column(key)[0] for key in ("agreement", "rounds", "episodes", "debt")}
    n = len(episodes["utility"])
    assert float(first["agreement"]["data-value"]) == pytest.approx(episodes["ending_name"].count("agreement") / n)
    assert float(first["rounds"]["data-value"]) == pytest.approx(sum(episodes["rounds"]) / n)
    assert first["episodes"]["data-value"] == str(n)
    debt = [u for u, d in zip(episodes["utility"], episodes["domain"], strict=True) if d == "debt"]
    assert float(first["debt"]["data-value"]) == pytest.approx(sum(debt) / len(debt), abs=1e-6)
    debt_cell = first["debt"]
    assert float(debt_cell["data-low"]) < float(debt_cell["data-value"]) < float(debt_cell["data-high"])


def test_the_header_explains_the_numbers_and_names_the_release(site, release):
    text = (site / "index.html").read_text()
    for words in ("Utility", "[0, 1]", "95% CI", f"{BOOTSTRAP} resamples", "replay-verified",
                  release_manifest(release)["release"]):
        assert words in text


def test_entry_names_link_to_their_pages_and_each_page_links_back(site):
    index = read(site / "index.html")
    links = {href: text for href, text in index.links}
    assert links == {"entries/random-teacher.html": "random teacher",
                     "entries/angry-teacher.html": "angry teacher",
                     "entries/script-alert-1-script-co.html": HOSTILE}
    for href in links:
        assert ("../index.html", "← Leaderboard") in read(site / href).links


def test_user_provided_text_is_escaped(site):
    index = (site / "index.html").read_text()
    page = (site / "entries" / "script-alert-1-script-co.html").read_text()
    for text in (index, page):
        assert "<script>alert" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert [tag for tag, _ in read(site / "index.html").tags].count("script") == 1  # the sort script only
    assert "script" not in [tag for tag, _ in read(site / "entries" / "script-alert-1-script-co.html").tags]
    assert "A &lt;b&gt;bold&lt;/b&gt; claim" in page
    for plot in (site / "plots").iterdir():
        assert "<script" not in plot.read_text() and "&lt;script&gt;alert(1)" in plot.read_text()


def test_pages_run_only_their_own_script_and_fetch_nothing(site):
    for path in [site / "index.html", *(site / "entries").iterdir()]:
        page = read(path)
        policy = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv"))
        assert "default-src 'none'" in policy and "unsafe-inline" not in policy
        urls = [a.get("src") or a.get("href") for _, a in page.tags if a.get("src") or a.get("href")]
        assert urls and all("//" not in url for url in urls)
        for url in urls:
            assert (path.parent / url.split("#")[0]).resolve().is_file(), url


def test_entry_page_shows_metadata_domains_endings_and_emotions(site, board):
    path = site / "entries" / "angry-teacher.html"
    page, text = read(path), path.read_text()
    metadata = json.loads((board / "angry-teacher" / "entry.json").read_text())
    for field in ("model", "contact", "licence", "release", "episodes_sha256", "verified_by"):
        assert f"<dd>{metadata[field]}</dd>" in text
    episodes = pq.read_table(board / "angry-teacher" / "episodes.parquet").to_pydict()
    domains = [cells[0][1] for cells in page.table("domains")]
    assert domains == ["debt", "disaster", "hospital", "student", "overall"]
    header, *rows = page.table("endings", header=True)
    counts = {name: int(cell[0]["data-value"]) for name, cell in zip([h for _, h in header[1:]], rows[-1][1:],
                                                                      strict=True)}
    assert counts == {**Counter(episodes["ending_name"]), "episodes": len(episodes["ending_name"])}
    assert [cells[0][1] for cells in page.table("emotions")] == ["anger"]


def test_plots_are_deterministic_svg_files_next_to_the_pages(site):
    sources = [a["src"] for t, a in read(site / "index.html").tags if t == "img"]
    assert sources == ["plots/utility-by-domain.svg", "plots/utility-by-emotion.svg"]
    for source in sources:
        svg = (site / source).read_text()
        assert svg.startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg
    assert "angry teacher" in (site / sources[0]).read_text()
    assert "gratitude" in (site / sources[1]).read_text()


def test_the_same_board_builds_the_same_bytes(site, board, tmp_path):
    again = build_site(board, tmp_path / "again", bootstrap=BOOTSTRAP).parent
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) == 6
    for name in files:
        assert (site / name).read_bytes() == (again / name).read_bytes(), name


def test_rebuilding_replaces_the_earlier_site(board, tmp_path):
    out = tmp_path / "site"
    build_site(board, out, bootstrap=BOOTSTRAP)
    smaller = tmp_path / "smaller"
    shutil.copytree(board / "angry-teacher", smaller / "angry-teacher")
    build_site(smaller, out, bootstrap=BOOTSTRAP)
    assert sorted(p.name for p in (out / "entries").iterdir()) == ["angry-teacher.html"]
    assert read(out / "index.html").order() == ["angry-teacher"]


def test_entries_whose_cis_overlap_share_a_rank(board, tmp_path):
    tied = tmp_path / "tied"
    shutil.copytree(board / "angry-teacher", tied / "angry-teacher")
    shutil.copytree(board / "angry-teacher", tied / "angry-teacher-again")
    shutil.copytree(board / "random-teacher", tied / "random-teacher")
    index = read(build_site(tied, tmp_path / "site", bootstrap=BOOTSTRAP))
    ranks = [(attrs["data-value"], text) for attrs, text in
             [(cells[0][0], cells[0][1]) for _, cells in index.entry_rows()]]
    assert ranks == [("1", "1"), ("2", "=2"), ("2", "=2")]


def test_an_entry_is_one_policy_even_when_its_rows_name_several(board, tmp_path):
    """A board entry is scored as one policy, whatever ``focal_agent`` its rows carry; an entry that
    declared no emotions gets a note instead of emotion rows (and no emotion plot)."""
    folder = tmp_path / "board" / "mixed"
    shutil.copytree(board / "random-teacher", folder)
    rows = pq.read_table(folder / "episodes.parquet").to_pylist()
    for i, row in enumerate(rows):
        row["focal_agent"] = f"agent-{i % 2}"
        for turn in row["turns"]:
            turn["declared_emotion"], turn["declared_emotion_name"] = -1, None
    schema = pq.read_schema(folder / "episodes.parquet")
    pq.write_table(pq.read_table(folder / "episodes.parquet").from_pylist(rows, schema=schema),
                   folder / "episodes.parquet")
    site = build_site(folder.parent, tmp_path / "site", bootstrap=BOOTSTRAP).parent
    index = read(site / "index.html")
    assert index.order() == ["mixed"]
    assert index.column("episodes")[0]["data-value"] == str(len(rows))
    assert not (site / "plots" / "utility-by-emotion.svg").exists()
    assert "declared no emotions" in (site / "entries" / "mixed.html").read_text()


def test_a_missing_or_empty_board_is_a_clear_error(tmp_path):
    with pytest.raises(EmoNegError, match="does not exist"):
        build_site(tmp_path / "nowhere", tmp_path / "site")
    (tmp_path / "empty" / ".staging-entry").mkdir(parents=True)
    with pytest.raises(EmoNegError, match="has no entries; add one with `emoneg leaderboard submit"):
        build_site(tmp_path / "empty", tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_an_entry_without_its_files_is_a_clear_error(board, tmp_path):
    (tmp_path / "board" / "broken").mkdir(parents=True)
    (tmp_path / "board" / "broken" / "entry.json").write_text("{}")
    with pytest.raises(EmoNegError, match="broken has no episodes.parquet"):
        build_site(tmp_path / "board", tmp_path / "site")


def test_a_folder_that_is_not_a_site_is_never_replaced(board, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(EmoNegError, match="is not a leaderboard site"):
        build_site(board, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_importing_the_site_loads_no_plotting_or_ml_library():
    code = ("import sys, leaderboard.site\n"
            "print(sorted(m for m in ('matplotlib', 'torch', 'transformers', 'baselines') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# ── in a real browser ────────────────────────────────────────────────────────────────────────────

def dump_dom(url: str, folder: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium with its own profile in ``folder``.
    Pages under file:// may read each other's DOM (``--allow-file-access-from-files``)."""
    result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                             "--disable-background-networking", "--no-first-run", "--allow-file-access-from-files",
                             f"--user-data-dir={folder / 'chromium-profile'}", "--dump-dom", url],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout


def values(index: Page, key: str) -> list[float]:
    return [float(cell["data-value"]) for cell in index.column(key)]


@needs_chromium
def test_the_browser_shows_the_entries_in_rank_order(site, tmp_path):
    shown = Page(dump_dom((site / "index.html").as_uri(), tmp_path))
    assert shown.order() == read(site / "index.html").order() == [
        "random-teacher", "angry-teacher", "script-alert-1-script-co"]
    assert ("entries/script-alert-1-script-co.html", HOSTILE) in shown.links


@needs_chromium
def test_a_sort_in_the_url_hash_is_applied_on_load(site, tmp_path):
    built = read(site / "index.html")
    by_rounds = [name for _, name in sorted(zip(values(built, "rounds"), built.order(), strict=True),
                                            reverse=True)]
    assert Page(dump_dom((site / "index.html").as_uri() + "#sort=rounds:desc", tmp_path)).order() == by_rounds
    by_name = [name for _, name in sorted(zip([c["data-value"] for c in built.column("entry")], built.order(),
                                              strict=True))]
    assert Page(dump_dom((site / "index.html").as_uri() + "#sort=entry", tmp_path)).order() == by_name
    assert by_name != built.order()


@needs_chromium
def test_clicking_a_header_sorts_and_clicking_it_again_reverses(site, tmp_path):
    """A page in the test's folder frames the site, clicks the Rounds header twice and writes down the
    row order after each click."""
    harness = tmp_path / "harness.html"
    harness.write_text(f"""<!DOCTYPE html><html><body><pre id="result"></pre>
<iframe id="site" src="{(site / 'index.html').as_uri()}"></iframe>
<script>
document.getElementById("site").addEventListener("load", function () {{
  var page = this.contentDocument, seen = [];
  function order() {{
    return Array.prototype.map.call(page.querySelectorAll("#leaderboard tbody tr"),
                                    function (row) {{ return row.dataset.entry; }}).join(",");
  }}
  var button = page.querySelector('#leaderboard th[data-key="rounds"] button');
  button.click(); seen.push(order());
  button.click(); seen.push(order());
  seen.push(page.location.hash);
  document.getElementById("result").textContent = seen.join(";");
}});
</script></body></html>""")
    shown = dump_dom(harness.as_uri(), tmp_path)
    built = read(site / "index.html")
    ascending = [name for _, name in sorted(zip(values(built, "rounds"), built.order(), strict=True))]
    assert f"{','.join(ascending)};{','.join(reversed(ascending))};#sort=rounds:desc" in shown
