"""Bad input at every door, as a hostile but realistic user supplies it: each case is one command line
that must end in exactly one ``error:`` line, exit status 2, no traceback, and no file created, changed
or removed under the workspace. Then the property that a byte changed anywhere in any shard is refused
by every consumer of a release."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from release_tamper import copy_release, edit_manifest, first_half, flip_byte, reseal, rewrite_shard, scaled

from emoneg_bench.cli import main
from emoneg_bench.errors import InputError
from emoneg_bench.outputs import folder_lock

CONFIG = "builders/configs/emoneg-v1.yaml"
SHARD = "data/transitions/train-00000-of-00003.parquet"
TEST_TASKS = "data/tasks/test-00000-of-00001.parquet"
EPISODES_SHARD = "data/episodes/validation-00000-of-00001.parquet"
HEADER = ("Case_ID,Disaster_Type,Survivor_Condition,Estimated_Survivor_Endurance(minutes),Rescue_Team_ETA(minutes),"
          "Critical_Needs,Key_Negotiation_Argument_By_RoboDog")


@dataclass(frozen=True)
class Workspace:
    root: Path
    name: str  # the release folder's name

    def release(self, variant: str = "genuine") -> str:
        return str(self.root / "releases" / variant / self.name)

    def __truediv__(self, other: str) -> Path:
        return self.root / other


def _variants(genuine: Path, root: Path) -> None:
    """One release folder per way of damaging or doctoring a release."""
    def variant(name: str) -> Path:
        return copy_release(genuine, root / "releases" / name)

    copy_release(genuine, root / "releases" / "genuine")
    flip_byte(variant("flipped") / SHARD, 4096)
    (variant("deleted") / EPISODES_SHARD).unlink()
    edit_manifest(variant("manifest-edited"), lambda m: m | {"shards": m["shards"] | {
        TEST_TASKS: m["shards"][TEST_TASKS] | {"sha256": "0" * 64}}})
    rewrite_shard(variant("rewards-x100") / SHARD, scaled("reward", 100.0))
    half = variant("half-test-tasks")
    rewrite_shard(half / TEST_TASKS, first_half)
    reseal(half)
    edit_manifest(variant("empty-manifest"), lambda m: "{}")
    edit_manifest(variant("format-2"), lambda m: m | {"format": 2})
    extra = variant("extra-shard")
    shutil.copyfile(extra / SHARD, extra / "data/transitions/train-extra.parquet")
    card = variant("card-redirected") / "README.md"
    card.write_text(card.read_text().replace("path: data/tasks/test-*", "path: data/tasks/train-*"))
    (variant("no-manifest") / "MANIFEST.json").unlink()


def _results(root: Path, genuine: Path) -> None:
    """Episodes Parquet files for `score`: good ones and ones that would make a score lie."""
    results = root / "results"
    results.mkdir()
    table = pq.read_table(genuine / EPISODES_SHARD)
    pq.write_table(table, results / "good.parquet")
    pq.write_table(table, results / "copy-of-good.parquet")

    def with_utility(values: pa.Array, name: str) -> None:
        index = table.schema.get_field_index("utility")
        pq.write_table(table.set_column(index, pa.field("utility", values.type), values), results / name)

    utility = table.column("utility").combine_chunks().to_pylist()
    with_utility(pa.array(utility[:3] + [float("nan")] + utility[4:]), "nan.parquet")
    with_utility(pa.array(utility[:5] + [float("inf")] + utility[6:]), "inf.parquet")
    with_utility(pa.array(utility[:2] + [1.5] + utility[3:]), "above-one.parquet")
    with_utility(pc.cast(table.column("utility"), pa.string()).combine_chunks(), "string-utility.parquet")
    with_utility(pa.array(utility[:1] + [float("nan")] + utility[2:]), "a*b.parquet")
    pq.write_table(table, results / "aXb.parquet")
    pq.write_table(table.drop_columns(["utility"]), results / "no-utility.parquet")
    (results / "not-parquet.parquet").write_text("utility,episode_id\n0.5,x\n")


def _inputs(root: Path, genuine: Path) -> None:
    """Scenario CSVs and tables, build configs, runs and submissions."""
    (root / "in").mkdir()
    good = HEADER + "\nD-1,Flood,Stranded,45,120,Water,Wait\n"
    (root / "in/disaster.csv").write_text(good)
    (root / "in/latin1.csv").write_bytes((HEADER + "\nD-1,Séisme,Coincé,45,120,Eau,Attendre\n").encode("latin-1"))
    (root / "in/wrong-header.csv").write_text("Case,Type\nD-1,Flood\n")
    (root / "in/empty.csv").write_text("")
    (root / "in/all-refused.csv").write_text(HEADER + "\nD-1,Flood,Stranded,120,45,Water,Wait\n")
    (root / "in/existing.parquet").write_bytes(b"earlier output")
    (root / "in/stale.rejections.csv").write_text("row,source_id,reason\n1,D-1,old\n")
    (root / "in/x.repairs.csv").write_text(good)
    (root / "in/x.csv").write_text(good)
    (root / "in/malformed-scenarios.csv").write_text("domain,scenario_id\ndebt,debt-0001,surplus\n")
    footer = bytearray((genuine / "data/scenarios/test-00000-of-00001.parquet").read_bytes())
    footer[-8:-4] = (2**31 - 1).to_bytes(4, "little")
    (root / "in/bad-footer.parquet").write_bytes(bytes(footer))
    from emoneg_bench.domains import generate_scenarios
    from emoneg_bench.scenario_io import write_rows

    scenarios = [s.to_record() for s in generate_scenarios("debt", 3, 0)]
    write_rows([s | {"focal_anchor": s["counterparty_anchor"], "counterparty_anchor": s["focal_anchor"]}
                for s in scenarios], root / "in/wrong-polarity.csv")
    write_rows([s | {"focal_anchor": "soon" if i == 0 else str(s["focal_anchor"])} for i, s in enumerate(scenarios)],
               root / "in/string-anchor.csv")
    (root / "configs").mkdir()
    (root / "configs/broken.yaml").write_text("name: [unclosed\n")
    (root / "configs/unknown-key.yaml").write_text("name: x\nversion: 1.0.0\nflavour: mint\n")
    (root / "configs/huge.yaml").write_text("name: x\nversion: 1.0.0\n" + "# padding\n" * 120_000)
    (root / "builds").mkdir()
    (root / "a-file").write_text("not a folder")
    (root / "runs/finished-iql").mkdir(parents=True)
    (root / "runs/finished-iql/iql.json").write_text("{}")
    (root / "runs/sft").mkdir()
    (root / "runs/sft/training.json").write_text(json.dumps({"kind": "sft", "base_model": "nowhere", "role": "focal"}))
    (root / "model").mkdir()
    (root / "model/config.json").write_text("{}")
    (root / "sub-huge-yaml").mkdir()
    (root / "sub-huge-yaml/submission.yaml").write_text("name: x\n" + "# padding\n" * 8_000)
    (root / "site").mkdir()
    (root / "site/index.html").write_text("<p>an earlier site</p>")


@pytest.fixture(scope="module")
def ws(small_release, tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("bad-input")
    _variants(small_release, root)
    _results(root, small_release)
    _inputs(root, small_release)
    return Workspace(root, small_release.name)


@dataclass(frozen=True)
class Case:
    argv: object  # Workspace -> list[str]
    expected: str  # a regular expression the error line matches
    holding: object = None  # Workspace -> context manager held while the command runs


def case(command: str, name: str, argv, expected: str, holding=None):
    return pytest.param(Case(argv, expected, holding), id=f"{command}: {name}")


def lock_of_small_build(ws: Workspace):
    return folder_lock(ws / "builds" / ".emoneg-trajectories-small-v2.0.0.lock", "emoneg-trajectories-small-v2.0.0")


def imp(ws, csv, out, *more):
    return ["scenarios", "import", "--domain", "disaster", str(ws / csv), "--out", str(ws / out), *more]


def play(ws, *more):
    return ["play", "--domain", "debt", "--scenario", "debt-0001", "--persona", "pushover", *more]


def score(ws, *files, more=()):
    return ["score", *(str(ws / "results" / f) if not f.startswith("/") else f for f in files), "--bootstrap", "100",
            *more]


def ev(ws, variant="genuine", out="new-results.parquet", *more):
    return ["eval", "--policy", "teacher", "--release", ws.release(variant), "--out", str(ws / out), "--quiet", *more]


def iql(ws, variant="genuine", out="runs/new-iql", *more):
    return ["train", "iql", "--release", ws.release(variant), "--out", str(ws / out), "--steps", "5", "--quiet",
            *more]


def validate(ws, variant="genuine", submission="sub-huge-yaml"):
    return ["leaderboard", "validate", str(ws / submission), "--release", ws.release(variant)]


TAMPERED = {
    "flipped": r"train-00000-of-00003\.parquet: sha256 is .*the file changed after the build",
    "deleted": r"validation-00000-of-00001\.parquet: is missing; MANIFEST\.json lists it",
    "manifest-edited": r"test-00000-of-00001\.parquet: sha256 is .*MANIFEST\.json says 000000000000",
    "rewards-x100": r"train-00000-of-00003\.parquet: sha256 is .*changed after the build",
    "empty-manifest": r"MANIFEST\.json, field 'version': release .* has version none",
    "format-2": r"MANIFEST\.json, field 'format': has manifest format 2; this toolkit reads format 1",
    "extra-shard": r"train-extra\.parquet: is not listed in MANIFEST\.json",
    "card-redirected": r"README\.md, field 'configs': config 'tasks' split 'test' reads 1 files, MANIFEST\.json has 1",
    "half-test-tasks": r"test-00000-of-00001\.parquet: the test split is incomplete: \d+ of the \d+ tasks",
    "no-manifest": r"is not a release folder: it has no MANIFEST\.json",
}

CASES = [
    # ---- scenarios import / generate
    case("import", "missing file", lambda ws: imp(ws, "in/nope.csv", "o.parquet"), r"nope\.csv: no such file"),
    case("import", "not UTF-8", lambda ws: imp(ws, "in/latin1.csv", "o.parquet"), r"not UTF-8"),
    case("import", "wrong header", lambda ws: imp(ws, "in/wrong-header.csv", "o.parquet"),
         r"header does not match the disaster format"),
    case("import", "empty file", lambda ws: imp(ws, "in/empty.csv", "o.parquet"), r"the file is empty"),
    case("import", "every row refused", lambda ws: imp(ws, "in/all-refused.csv", "o.parquet"),
         r"no row could be imported \(row 1: disaster needs a > b"),
    case("import", "output exists", lambda ws: imp(ws, "in/disaster.csv", "in/existing.parquet"),
         r"existing\.parquet: the output already exists; pass --overwrite"),
    case("import", "output is the input", lambda ws: imp(ws, "in/disaster.csv", "in/disaster.csv"),
         r"the output is also an input"),
    case("import", "report would replace the input", lambda ws: imp(ws, "in/x.repairs.csv", "in/x.csv", "--overwrite"),
         r"x\.repairs\.csv: the repairs file is also an input"),
    case("import", "stale report exists", lambda ws: imp(ws, "in/disaster.csv", "in/stale.parquet"),
         r"stale\.rejections\.csv: the rejections file already exists; pass --overwrite"),
    case("import", "output folder missing", lambda ws: imp(ws, "in/disaster.csv", "nowhere/o.parquet"),
         r"the output folder does not exist"),
    case("import", "unsupported output format", lambda ws: imp(ws, "in/disaster.csv", "o.txt"),
         r"unsupported output format '\.txt'"),
    case("import", "unknown domain",
         lambda ws: ["scenarios", "import", "--domain", "mars", str(ws / "in/disaster.csv"), "--out", str(ws / "o.csv")],
         r"unknown domain 'mars'"),
    case("import", "generate over an existing file",
         lambda ws: ["scenarios", "generate", "--domain", "debt", "--out", str(ws / "in/existing.parquet")],
         r"the output already exists; pass --overwrite"),
    case("import", "generate zero scenarios",
         lambda ws: ["scenarios", "generate", "--domain", "debt", "--count", "0", "--out", str(ws / "g.parquet")],
         r"--count must be at least 1"),
    # ---- play
    case("play", "malformed scenarios CSV", lambda ws: play(ws, "--scenarios", str(ws / "in/malformed-scenarios.csv")),
         r"malformed-scenarios\.csv: not a readable scenario table"),
    case("play", "text in an anchor", lambda ws: play(ws, "--scenarios", str(ws / "in/string-anchor.csv")),
         r"string-anchor\.csv, row 1, field 'focal_anchor': is 'soon', expected int"),
    case("play", "scenario anchors of the wrong polarity",
         lambda ws: play(ws, "--scenarios", str(ws / "in/wrong-polarity.csv")),
         r"wrong-polarity\.csv, row 1, field 'focal_anchor': anchors a=\d+, b=\d+ do not have the debt polarity"),
    case("play", "a Parquet footer larger than its file",
         lambda ws: play(ws, "--scenarios", str(ws / "in/bad-footer.parquet")), r"Parquet footer in a [\d,]+-byte file"),
    case("play", "missing scenario file", lambda ws: play(ws, "--scenarios", str(ws / "in/none.parquet")),
         r"none\.parquet: no such scenario file"),
    case("play", "unknown scenario", lambda ws: ["play", "--domain", "debt", "--scenario", "debt-9999", "--persona",
                                                 "pushover"], r"no debt scenario 'debt-9999'"),
    case("play", "unknown persona", lambda ws: ["play", "--domain", "debt", "--scenario", "debt-0001", "--persona",
                                                "saint"], r"unknown persona 'saint'"),
    case("play", "too few turns", lambda ws: play(ws, "--max-turns", "1"), r"--max-turns must be between 2 and 200"),
    case("play", "no counterparty", lambda ws: ["play", "--domain", "debt", "--scenario", "debt-0001"],
         r"say who the counterparty is"),
    # ---- build / merge
    case("build", "missing config", lambda ws: ["build", str(ws / "configs/none.yaml"), "--out", str(ws / "builds")],
         r"none\.yaml: no such build config"),
    case("build", "invalid YAML", lambda ws: ["build", str(ws / "configs/broken.yaml"), "--out", str(ws / "builds")],
         r"broken\.yaml: not valid YAML"),
    case("build", "unknown key", lambda ws: ["build", str(ws / "configs/unknown-key.yaml"), "--out",
                                             str(ws / "builds")], r"field 'flavour': unknown key"),
    case("build", "config over its size limit", lambda ws: ["build", str(ws / "configs/huge.yaml"), "--out",
                                                            str(ws / "builds")],
         r"huge\.yaml: is [\d,]+ bytes, over the 1,048,576-byte limit for a build config; refused before parsing"),
    case("build", "a second build of the same release",
         lambda ws: ["build", CONFIG, "--profile", "small", "--out", str(ws / "builds"), "--quiet"],
         r"a build of emoneg-trajectories-small-v2\.0\.0 is in progress by PID \d+; this command changed nothing",
         holding=lock_of_small_build),
    case("build", "release already built", lambda ws: ["build", CONFIG, "--profile", "small", "--out",
                                                       str(ws / "releases/genuine"), "--quiet"],
         r"already exists and versions are immutable"),
    case("build", "shard out of range", lambda ws: ["build", CONFIG, "--profile", "small", "--out", str(ws / "builds"),
                                                    "--num-shards", "2", "--shard", "2"], r"--shard must be in 0…1"),
    case("build", "output is a file", lambda ws: ["build", CONFIG, "--profile", "small", "--out", str(ws / "a-file")],
         r"the output path is a file"),
    case("build", "unknown profile", lambda ws: ["build", CONFIG, "--profile", "huge", "--out", str(ws / "builds")],
         r"no profile 'huge'"),
    case("build", "merge of something that is not a part",
         lambda ws: ["merge", str(ws / "runs"), "--out", str(ws / "builds")], r"not a build part"),
    # ---- score
    case("score", "NaN utility", lambda ws: score(ws, "nan.parquet"),
         r"nan\.parquet, row 3, field 'utility': utility is nan, expected a finite number in \[0, 1\]"),
    case("score", "infinite utility", lambda ws: score(ws, "inf.parquet"), r"row 5, field 'utility': utility is inf"),
    case("score", "utility above one", lambda ws: score(ws, "above-one.parquet"), r"row 2, field 'utility': utility is 1\.5"),
    case("score", "utility of strings", lambda ws: score(ws, "string-utility.parquet"),
         r"string-utility\.parquet, field 'utility': has type string, expected a number"),
    case("score", "a literal name with a star is not a glob", lambda ws: score(ws, "a*b.parquet"),
         r"a\*b\.parquet, row 1, field 'utility': utility is nan"),
    case("score", "the same file twice", lambda ws: score(ws, "good.parquet", str(ws / "results/./good.parquet")),
         r"good\.parquet: is given twice .* every episode in it would count twice"),
    case("score", "episode ids repeated across files", lambda ws: score(ws, "good.parquet", "copy-of-good.parquet"),
         r"copy-of-good\.parquet, row 0, field 'episode_id': episode '.*' of '.*' is already in .*good\.parquet"),
    case("score", "missing column", lambda ws: score(ws, "no-utility.parquet"), r"missing columns utility"),
    case("score", "not Parquet", lambda ws: score(ws, "not-parquet.parquet"), r"not a Parquet file"),
    case("score", "missing file", lambda ws: score(ws, "absent.parquet"), r"absent\.parquet: file not found"),
    case("score", "a glob that matches nothing", lambda ws: score(ws, "zz*.parquet"), r"no file matches this pattern"),
    case("score", "too few resamples", lambda ws: ["score", str(ws / "results/good.parquet"), "--bootstrap", "10"],
         r"--bootstrap must be at least 100"),
    # ---- eval
    *[case("eval", f"release {variant}", lambda ws, v=variant: ev(ws, v), expected)
      for variant, expected in TAMPERED.items()],
    case("eval", "results file exists", lambda ws: ev(ws, "genuine", "results/good.parquet"),
         r"good\.parquet: the results file already exists; pass --overwrite"),
    case("eval", "results inside the release",
         lambda ws: ev(ws, "genuine", f"releases/genuine/{ws.name}/results.parquet", "--overwrite"),
         r"the results file lies inside the release"),
    case("eval", "unknown split", lambda ws: ev(ws, "genuine", "r.parquet", "--split", "holdout"),
         r"unknown split 'holdout'"),
    # ---- train
    *[case("train", f"iql on release {variant}", lambda ws, v=variant: iql(ws, v), TAMPERED[variant])
      for variant in ("flipped", "rewards-x100", "deleted", "empty-manifest", "no-manifest")],
    case("train", "iql into the release", lambda ws: ["train", "iql", "--release", ws.release(), "--out",
                                                      ws.release(), "--quiet"],
         r"the run folder is also an input of this command"),
    case("train", "iql over a finished run", lambda ws: iql(ws, "genuine", "runs/finished-iql"),
         r"finished-iql: the run folder holds a finished run \(iql\.json\); pass --overwrite"),
    case("train", "iql into a file", lambda ws: iql(ws, "genuine", "a-file"), r"the run folder is a file"),
    case("train", "sft on a doctored release",
         lambda ws: ["train", "sft", "--release", ws.release("rewards-x100"), "--model", str(ws / "model"), "--out",
                     str(ws / "runs/new-sft"), "--quiet"], TAMPERED["rewards-x100"]),
    case("train", "jpo over its own SFT run",
         lambda ws: ["train", "jpo", "--release", ws.release(), "--sft", str(ws / "runs/sft"), "--out",
                     str(ws / "runs/sft"), "--quiet"], r"sft: the run folder is also an input"),
    case("train", "jpo on a release with a flipped byte",
         lambda ws: ["train", "jpo", "--release", ws.release("flipped"), "--sft", str(ws / "runs/sft"), "--out",
                     str(ws / "runs/new-jpo"), "--quiet"], TAMPERED["flipped"]),
    # ---- leaderboard
    *[case("leaderboard", f"validate against release {variant}",
           lambda ws, v=variant: validate(ws, v), TAMPERED[variant])
      for variant in ("flipped", "half-test-tasks", "empty-manifest", "card-redirected")],
    case("leaderboard", "validate a submission.yaml over its size limit", lambda ws: validate(ws),
         r"sub-huge-yaml: submission rejected \(2 problems, listed above\)"),
    case("leaderboard", "validate a missing submission", lambda ws: validate(ws, "genuine", "no-submission"),
         r"no-submission: submission rejected"),
    case("leaderboard", "submit against a doctored release",
         lambda ws: ["leaderboard", "submit", str(ws / "sub-huge-yaml"), "--release", ws.release("rewards-x100"),
                     "--board", str(ws / "board")], TAMPERED["rewards-x100"]),
    case("leaderboard", "submit a rejected submission",
         lambda ws: ["leaderboard", "submit", str(ws / "sub-huge-yaml"), "--release", ws.release(), "--board",
                     str(ws / "board")], r"submission rejected .*the leaderboard is unchanged"),
    case("leaderboard", "build over an earlier site",
         lambda ws: ["leaderboard", "build", "--board", str(ws / "releases"), "--out", str(ws / "site")],
         r"site: the site folder already exists; pass --overwrite"),
    case("leaderboard", "build from a missing board",
         lambda ws: ["leaderboard", "build", "--board", str(ws / "no-board"), "--out", str(ws / "new-site")],
         r"leaderboard folder .*no-board does not exist"),
    # ---- HTTP endpoints
    case("http", "zero timeout", lambda ws: play(ws, "--http-timeout", "0"),
         r"field 'timeout': expected a positive number of seconds"),
    case("http", "negative deadline", lambda ws: play(ws, "--http-deadline", "-1"),
         r"field 'deadline': expected a positive number of seconds"),
    case("http", "NaN deadline", lambda ws: ev(ws, "genuine", "r.parquet", "--http-deadline", "nan"),
         r"field 'deadline': expected a positive number of seconds"),
    case("http", "negative retries", lambda ws: play(ws, "--http-retries", "-1"),
         r"field 'retries': expected an integer >= 0"),
    case("http", "byte cap too small", lambda ws: play(ws, "--http-max-bytes", "10"),
         r"field 'max_response_bytes': expected a whole number of bytes >= 1024"),
    case("http", "endpoint without a model", lambda ws: play(ws, "--focal", "lm:http://127.0.0.1:9/v1"),
         r"needs the model name"),
    case("http", "endpoint without a host", lambda ws: play(ws, "--focal", "lm:http:///v1?model=m"),
         r"field 'base_url': expected an http\(s\) URL"),
    case("http", "build with a zero deadline",
         lambda ws: ["build", CONFIG, "--out", str(ws / "builds"), "--http-deadline", "0"],
         r"field 'deadline': expected a positive number of seconds"),
    case("http", "eval of an endpoint without a model",
         lambda ws: ev(ws, "genuine", "r.parquet", "--policy", "vanilla-llm", "--llm", "http://127.0.0.1:9/v1"),
         r"needs the model name"),
]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` with what any write, creation or removal would change."""
    state = {}
    for folder, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(folder) / name
            st = path.lstat()
            state[str(path.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return state


def test_the_table_covers_every_door_with_enough_cases():
    commands = [p.id.split(":")[0] for p in CASES]
    assert len(CASES) >= 60
    assert set(commands) == {"import", "play", "build", "score", "eval", "train", "leaderboard", "http"}


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_one_error_line_exit_2_and_changes_nothing(ws, bad, capsys):
    with bad.holding(ws) if bad.holding else contextlib.nullcontext():
        before = snapshot(ws.root)
        code = main(bad.argv(ws))
        after = snapshot(ws.root)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in out + err
    assert len(errors) == 1, err
    assert re.search(bad.expected, errors[0]), errors[0]
    assert code == 2
    assert after == before, sorted(set(after.items()) ^ set(before.items()))


def test_scoring_a_literal_star_name_reads_that_file_only(ws):
    from leaderboard.scoring import score

    folder = ws / "results"
    shutil.copyfile(folder / "good.parquet", ws / "star*.parquet")
    try:
        table = score([ws / "star*.parquet"], "metrics", bootstrap=100)
    finally:
        (ws / "star*.parquet").unlink()
    overall = next(r for r in table.records() if r["domain"] == "overall")
    assert overall["n"] == pq.ParquetFile(folder / "good.parquet").metadata.num_rows


def test_one_agent_scored_under_two_labels_is_not_a_repeated_episode(ws, tmp_path):
    from leaderboard.scoring import score

    table = pq.read_table(ws / "results/good.parquet")
    index = table.schema.get_field_index("focal_agent")
    for label in ("iql[debt]", "iql[disaster]"):  # as `emoneg eval --label` writes a transfer run
        labelled = table.set_column(index, table.schema.field(index), pa.array([label] * table.num_rows))
        pq.write_table(labelled, tmp_path / f"{label}.parquet")
    records = score(sorted(tmp_path.glob("*.parquet")), "metrics", bootstrap=100).records()
    assert {r["policy"] for r in records} == {"iql[debt]", "iql[disaster]"}


def test_a_large_submission_yaml_is_refused_without_being_parsed(ws, monkeypatch):
    import time

    import yaml

    from leaderboard.submission import validate_submission

    def no_parsing(*args, **kwargs):
        raise AssertionError("submission.yaml was parsed")

    monkeypatch.setattr(yaml, "safe_load", no_parsing)
    folder = ws.root.parent / "sub-20mb"
    folder.mkdir(exist_ok=True)
    (folder / "submission.yaml").write_bytes(b"name: x\n" + b"# padding\n" * 2_000_000)
    started = time.perf_counter()
    report = validate_submission(folder, ws.release(), recognizer=object())
    assert not report.accepted and time.perf_counter() - started < 5
    assert any("over the 65,536-byte limit" in p for p in report.problems)


# ---- tampering any byte of any shard ---------------------------------------------------------------

@pytest.fixture(scope="module")
def target(small_release, tmp_path_factory) -> Path:
    """One copy of the release that the property test changes a byte in and restores, laid out so that
    `emoneg reproduce --out` finds it as its release."""
    root = tmp_path_factory.mktemp("tamper")
    return copy_release(small_release, root / "repro" / "release")


def consumers(release: Path, ws: Workspace) -> dict[str, object]:
    """Every way the toolkit reads a release: Python loaders, trainers, evaluation, leaderboard, reproduce."""
    from baselines.data import jpo_selection, sft_selection
    from baselines.evaluate import EvalRequest, evaluate
    from baselines.iql import load_transitions
    from emoneg_bench.release import config_rows, load_release_dataset, load_release_tasks, open_release
    from leaderboard.submission import validate_submission

    out = ws.root.parent / "never-written"
    cli = {
        "train iql": ["train", "iql", "--release", str(release), "--out", str(out), "--quiet"],
        "train sft": ["train", "sft", "--release", str(release), "--model", str(ws / "model"), "--out", str(out),
                      "--quiet"],
        "train jpo": ["train", "jpo", "--release", str(release), "--sft", str(ws / "runs/sft"), "--out", str(out),
                      "--quiet"],
        "eval": ["eval", "--policy", "teacher", "--release", str(release), "--out", str(out / "r.parquet"), "--quiet"],
        "leaderboard validate": ["leaderboard", "validate", str(ws / "sub-huge-yaml"), "--release", str(release)],
        "leaderboard submit": ["leaderboard", "submit", str(ws / "sub-huge-yaml"), "--release", str(release),
                               "--board", str(out)],
        "reproduce": ["reproduce", "--profile", "quick", "--out", str(release.parent.parent), "--quiet"],
    }
    python = {
        "open_release": lambda: open_release(release),
        "config_rows": lambda: config_rows(release, "scenarios", "test"),
        "load_release_tasks": lambda: load_release_tasks(release, "test"),
        "load_release_dataset": lambda: load_release_dataset(release, "episodes", "validation"),
        "load_transitions": lambda: load_transitions(release),
        "sft_selection": lambda: sft_selection(release),
        "jpo_selection": lambda: jpo_selection(release),
        "evaluate": lambda: evaluate(EvalRequest("teacher", release), out / "e.parquet", progress=False),
        "validate_submission": lambda: validate_submission(ws / "sub-huge-yaml", release, recognizer=object()),
    }
    return {**{name: ("cli", argv) for name, argv in cli.items()}, **{name: ("python", f) for name, f in python.items()}}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_changed_byte_of_any_shard_is_refused_by_every_consumer(target, ws, capsys, data):
    shards = sorted(json.loads((target / "MANIFEST.json").read_text())["shards"])
    name = data.draw(st.sampled_from(shards), label="shard")
    path = target / name
    original = path.read_bytes()
    offset = data.draw(st.integers(0, len(original) - 1), label="offset")
    mask = data.draw(st.integers(1, 255), label="xor")
    flip_byte(path, offset, mask)
    try:
        for consumer, (kind, call) in consumers(target, ws).items():
            if kind == "cli":
                assert main(call) == 2, consumer
                err = capsys.readouterr().err
                errors = [line for line in err.splitlines() if line.startswith("error:")]
                assert len(errors) == 1 and name in errors[0] and "sha256" in errors[0], (consumer, err)
            else:
                with pytest.raises(InputError, match=re.escape(name) + ": sha256 is"):
                    call()
        assert not (ws.root.parent / "never-written").exists()
    finally:
        path.write_bytes(original)
