"""The release builder's promises (DESIGN §7): deterministic bytes, immutable versions, resumable and
atomic builds, sharded builds that merge to the same bytes, releases that `datasets` loads with their
declared features (also in a fresh environment without the toolkit), and config errors that say where."""

import dataclasses
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from builders import build as build_module
from builders import plan
from builders.build import build, merge
from builders.config import load_config
from emoneg_bench import schema
from emoneg_bench.agents.personas import persona_names
from emoneg_bench.cli import main
from emoneg_bench.errors import InputError

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "builders" / "configs" / "emoneg-v1.yaml"
RELEASE = "emoneg-trajectories-small-v2.0.0"
# the config file's name is recorded in MANIFEST.json and CHANGELOG.md; `emoneg build` passes it


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (hidden ones too), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def manifest_rows(release: Path, config_name: str) -> dict[str, int]:
    rows: dict[str, int] = {}
    for meta in json.loads((release / "MANIFEST.json").read_text())["shards"].values():
        if meta["config"] == config_name:
            rows[meta["split"]] = rows.get(meta["split"], 0) + meta["rows"]
    return rows


def read_config(release: Path, config_name: str, split: str = "*"):
    import pyarrow as pa

    return pa.concat_tables(pq.read_table(p) for p in sorted((release / "data" / config_name).glob(f"{split}-*.parquet")))


def scenario_number(scenario_id: str) -> int:
    return int(scenario_id.rsplit("-", 1)[1])


@pytest.fixture(scope="module")
def small_config():
    return load_config(CONFIG, "small")


@pytest.fixture(scope="module")
def release(small_config, recognizer, tmp_path_factory) -> Path:
    """The uninterrupted single-process build every other build is compared with."""
    return build(small_config, tmp_path_factory.mktemp("reference"), progress=False, source=CONFIG.name)


@pytest.fixture(scope="module")
def parts(small_config, release, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("parts")
    return [build(small_config, folder, num_shards=3, shard=i, progress=False) for i in range(3)]


# ------------------------------------------------------------------------------ determinism and versions

def test_the_same_config_builds_byte_identical_releases(small_config, release, tmp_path):
    again = build(small_config, tmp_path, progress=False, source=CONFIG.name)
    first, second = tree_digest(release), tree_digest(again)
    assert {"README.md", "MANIFEST.json", "CHANGELOG.md"} <= set(first)
    shards = json.loads((release / "MANIFEST.json").read_text())["shards"]
    assert {name for name in first if name.endswith(".parquet")} == set(shards) and len(shards) == 21
    assert second == first


def test_an_existing_version_is_never_rebuilt(small_config, release):
    before = tree_digest(release)
    with pytest.raises(InputError, match="already exists and versions are immutable") as error:
        build(small_config, release.parent, progress=False)
    assert RELEASE in str(error.value)
    assert tree_digest(release) == before


# ------------------------------------------------------------------------------ resumable and atomic

def child_env() -> dict[str, str]:
    return {**os.environ, "EMONEG_CACHE": os.environ["EMONEG_CACHE"], "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


def build_command(out: Path) -> list[str]:
    return [sys.executable, "-m", "emoneg_bench.cli", "build", str(CONFIG), "--profile", "small", "--out", str(out),
            "--quiet"]


@pytest.mark.parametrize("kill_after", ["first unit", "third unit", "last unit"])
def test_a_killed_build_publishes_nothing_and_resumes_to_the_same_bytes(small_config, release, tmp_path,
                                                                       kill_after):
    units = len(plan.units(small_config))
    wanted = {"first unit": 1, "third unit": 3, "last unit": units}[kill_after]
    staging, published = tmp_path / f".{RELEASE}.partial", tmp_path / RELEASE
    child = subprocess.Popen(build_command(tmp_path), cwd=REPO, env=child_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    try:
        while child.poll() is None and len(list(staging.glob("units/*.json"))) < wanted:
            assert time.monotonic() < deadline, "the build wrote no unit marker within 180 s"
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    errors = child.stderr.read().decode()
    child.stderr.close()
    if child.returncode == -signal.SIGKILL:
        # killed mid-build: the release folder must not exist, half-written or otherwise
        assert not published.exists()
        assert staging.is_dir()
        resumed = subprocess.run(build_command(tmp_path), cwd=REPO, env=child_env(), capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.strip() == f"wrote release {published}"
    else:  # it finished before the kill landed; what it published must still be the same release
        assert child.returncode == 0, errors
    assert not staging.exists()
    assert tree_digest(published) == tree_digest(release)


class Crash(Exception):
    """Stands in for a build that died after its first unit."""


def test_resuming_with_a_different_config_is_refused(small_config, tmp_path, monkeypatch, recognizer):
    real_build_unit = build_module.build_unit

    def build_one_unit_then_crash(*args):
        real_build_unit(*args)
        raise Crash

    monkeypatch.setattr(build_module, "build_unit", build_one_unit_then_crash)
    with pytest.raises(Crash):
        build(small_config, tmp_path, progress=False)
    monkeypatch.undo()
    staging = tmp_path / f".{RELEASE}.partial"
    before = tree_digest(staging)
    assert len(list(staging.glob("units/*.json"))) == 1

    reseeded = dataclasses.replace(small_config, seed=1)
    assert reseeded.release_name == small_config.release_name
    with pytest.raises(InputError, match="interrupted build of a different config") as error:
        build(reseeded, tmp_path, progress=False)
    assert str(staging) in str(error.value)
    assert tree_digest(staging) == before
    assert not (tmp_path / RELEASE).exists()


# ------------------------------------------------------------------------------ sharded builds

def test_merged_parts_are_byte_identical_to_a_single_build(parts, release, tmp_path):
    assert [p.name for p in parts] == [f"{RELEASE}.part-{i:03d}-of-003" for i in range(3)]
    merged = merge(parts, tmp_path, source=CONFIG.name)
    assert merged == tmp_path / RELEASE
    assert tree_digest(merged) == tree_digest(release)
    assert not (tmp_path / f".{RELEASE}.partial").exists()


def test_merge_refuses_parts_that_do_not_cover_the_build(small_config, parts, tmp_path):
    missing = plan.units(small_config)[2].unit_id  # unit i belongs to part i % 3
    with pytest.raises(InputError, match=f"missing 2 units, e.g. {missing}"):
        merge(parts[:2], tmp_path)
    assert not (tmp_path / RELEASE).exists()


def test_merge_refuses_a_part_given_twice(parts, tmp_path):
    with pytest.raises(InputError, match=r"unit \S+ is in two parts"):
        merge([parts[0], *parts], tmp_path)
    assert not (tmp_path / RELEASE).exists()


def test_merge_refuses_parts_of_different_configs(small_config, parts, tmp_path):
    other = build(dataclasses.replace(small_config, seed=1), tmp_path / "other", num_shards=3, shard=1,
                  progress=False)
    assert other.name == parts[1].name
    with pytest.raises(InputError, match="built from different configs"):
        merge([parts[0], other, parts[2]], tmp_path)
    assert not (tmp_path / RELEASE).exists()


def test_merge_command_writes_the_release(parts, release, tmp_path, capsys):
    assert main(["merge", *map(str, parts), "--out", str(tmp_path), "--source", CONFIG.name]) == 0
    assert capsys.readouterr().out.strip() == f"wrote release {tmp_path / RELEASE}"
    assert tree_digest(tmp_path / RELEASE) == tree_digest(release)


# ------------------------------------------------------------------------------ loading with `datasets`

def test_episodes_load_with_datasets_with_their_declared_features(release, tmp_path):
    from datasets import ClassLabel, List, load_dataset

    episodes = load_dataset(str(release), "episodes", cache_dir=str(tmp_path))
    assert {split: d.num_rows for split, d in episodes.items()} == manifest_rows(release, "episodes")
    assert set(episodes) == {"train", "validation", "fixed_emotion_sweep"}
    turns = episodes["train"].features["turns"]
    assert isinstance(turns, List) and isinstance(turns.feature, dict)
    declared = turns.feature["declared_emotion"]
    assert isinstance(declared, ClassLabel) and declared.num_classes == 28 and declared.names[2] == "anger"
    assert episodes["train"].features == schema.features("episodes")
    first_shard = pq.read_table(sorted((release / "data/episodes").glob("train-*.parquet"))[0])
    expected = [turn["text"] for turn in first_shard.column("turns")[0].as_py()]
    assert [turn["text"] for turn in episodes["train"][0]["turns"]] == expected
    assert len(expected) >= 2


def test_transitions_load_with_datasets_with_the_named_state_features(release, tmp_path):
    from datasets import ClassLabel, List, Value, load_dataset

    from emoneg_bench.features import STATE_DIM

    transitions = load_dataset(str(release), "transitions", cache_dir=str(tmp_path))
    assert {split: d.num_rows for split, d in transitions.items()} == manifest_rows(release, "transitions")
    assert set(transitions) == {"train", "validation"}
    features = transitions["train"].features
    assert features["state"] == List(Value("float32"), length=STATE_DIM) == features["next_state"]
    assert features["utility_reward"] == Value("float32")
    assert isinstance(features["action"], ClassLabel) and features["action"].num_classes == 28
    first = transitions["train"][0]
    first_shard = pq.read_table(sorted((release / "data/transitions").glob("train-*.parquet"))[0])
    assert len(first["state"]) == STATE_DIM and first["state"] == first_shard.column("state")[0].as_py()


def test_tasks_load_with_datasets_with_four_splits(release, tmp_path):
    from datasets import load_dataset

    tasks = load_dataset(str(release), "tasks", cache_dir=str(tmp_path))
    assert set(tasks) == {"train", "validation", "test", "test_unseen_counterparty"}
    assert {split: d.num_rows for split, d in tasks.items()} == manifest_rows(release, "tasks")
    assert set(tasks["test_unseen_counterparty"]["persona"]) == set(persona_names(held_out=True))
    assert set(tasks["test"]["persona"]) == set(persona_names(held_out=False))


LOADER = """
import json, sys
from datasets import load_dataset

episodes = load_dataset(sys.argv[1], "episodes")
print(json.dumps({"rows": {split: d.num_rows for split, d in episodes.items()},
                  "features": episodes["train"].features.to_dict(),
                  "first_turn": episodes["train"][0]["turns"][0]}))
"""

NETWORK_TROUBLE = re.compile(r"NewConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|"
                             r"Temporary failure in name resolution|Network is unreachable|Name or service not known|"
                             r"ProxyError|Connection refused|connection broken", re.IGNORECASE)


@pytest.mark.slow
def test_a_fresh_environment_with_only_datasets_loads_the_release(release, tmp_path):
    from datasets import load_dataset

    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    try:
        pip = subprocess.run([python, "-m", "pip", "install", "datasets>=5.2,<5.3"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("pip could not install datasets from the package registry within 5 minutes (network)")
    if pip.returncode != 0:
        if NETWORK_TROUBLE.search(pip.stdout + pip.stderr):
            pytest.skip("the package registry is unreachable, so datasets cannot be installed in a fresh venv")
        pytest.fail(f"pip install datasets failed:\n{pip.stderr[-3000:]}")

    child_env = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    no_toolkit = subprocess.run([python, "-c", "import emoneg_bench"], cwd=tmp_path, env=child_env,
                                capture_output=True, text=True, timeout=60)
    assert no_toolkit.returncode != 0 and "ModuleNotFoundError" in no_toolkit.stderr
    loaded = subprocess.run([python, "-c", LOADER, str(release)], cwd=tmp_path, env=child_env,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    fresh = json.loads(loaded.stdout.strip().splitlines()[-1])

    episodes = load_dataset(str(release), "episodes", cache_dir=str(tmp_path / "toolkit-cache"))
    ours = json.loads(json.dumps({"rows": {split: d.num_rows for split, d in episodes.items()},
                                  "features": episodes["train"].features.to_dict(),
                                  "first_turn": episodes["train"][0]["turns"][0]}))
    assert fresh == ours
    assert fresh["rows"] == manifest_rows(release, "episodes")


# ------------------------------------------------------------------------------ release content

def card_front_matter(release: Path) -> dict:
    text = (release / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_the_release_has_exactly_the_five_configs(release):
    assert sorted(p.name for p in (release / "data").iterdir()) == sorted(schema.CONFIGS)
    assert [c["config_name"] for c in card_front_matter(release)["configs"]] == list(schema.CONFIGS)


def test_the_card_front_matter_parses_with_episodes_as_default(release):
    front = card_front_matter(release)
    assert front["configs"][0]["config_name"] == "episodes" and front["configs"][0]["default"] is True
    assert not any(c.get("default") for c in front["configs"][1:])
    assert front["license"] == "apache-2.0"
    info = {(c["config_name"], s["name"]): s["num_examples"] for c in front["dataset_info"] for s in c["splits"]}
    assert info == {(config_name, split): rows for config_name in schema.CONFIGS
                    for split, rows in manifest_rows(release, config_name).items()}


def test_the_manifest_records_every_shard_with_its_sha256(release):
    shards = json.loads((release / "MANIFEST.json").read_text())["shards"]
    on_disk = {name: digest for name, digest in tree_digest(release).items() if name.endswith(".parquet")}
    assert {name: meta["sha256"] for name, meta in shards.items()} == on_disk
    assert all(meta["rows"] == pq.ParquetFile(release / name).metadata.num_rows for name, meta in shards.items())


def test_no_trajectory_comes_from_a_test_scenario(small_config, release):
    assert small_config.training_scenarios == 80
    for config_name in ("episodes", "transitions", "sft"):
        numbers = {scenario_number(s) for s in read_config(release, config_name).column("scenario_id").to_pylist()}
        assert numbers and max(numbers) <= 80, config_name
    test_numbers = {scenario_number(s) for s in read_config(release, "tasks", "test").column("scenario_id").to_pylist()}
    assert test_numbers == set(range(81, 101))


def test_transitions_and_sft_have_one_row_per_focal_decision(release):
    for split in ("train", "validation"):
        turns = read_config(release, "episodes", split).column("turns").to_pylist()
        focal_decisions = sum(turn["role"] == "focal" for episode in turns for turn in episode)
        assert focal_decisions > 0
        assert read_config(release, "transitions", split).num_rows == focal_decisions
        assert read_config(release, "sft", split).num_rows == focal_decisions


def test_sft_rows_are_written_in_the_structured_protocol_and_parse_under_its_schema(release):
    from emoneg_bench.domains import get_domain
    from emoneg_bench.protocol import Action, parse_action

    scenarios = {}
    for split in ("train", "validation"):
        for row in read_config(release, "scenarios", split).to_pylist():
            domain = get_domain(row["domain"])
            names = {f for f in domain.scenario_type.__dataclass_fields__}
            scenarios[row["scenario_id"]] = domain.scenario_type(**{k: v for k, v in row.items() if k in names})
    rows = read_config(release, "sft", "train").to_pylist()
    assert rows
    for row in rows:
        move = parse_action(row["messages"][-1]["content"], scenarios[row["scenario_id"]])
        assert isinstance(move, Action), (row["messages"][-1]["content"], move)
        assert row["messages"][0]["role"] == "system" and "one JSON object" in row["messages"][0]["content"]


# ------------------------------------------------------------------------------ bad input

BASE = "name: emoneg-trajectories\nversion: 1.0.0\n"
HELD_OUT = persona_names(held_out=True)[0]
BAD_CONFIGS = {
    # case: (file text, profile, field named in the error or None, words the error must contain)
    "unknown top-level key": (BASE + "colour: blue\n", None, "colour", "unknown key"),
    "unknown nested key": (BASE + "corpus: {episodes_per_scenario: 2, personaz: training}\n", None, "corpus",
                           "unknown key 'personaz'"),
    "unknown key in a profile": (BASE + "profiles:\n  small:\n    sweep: {emotionz: all}\n", "small",
                                 "profiles.small.sweep", "unknown key 'emotionz'"),
    "non-semver version": ("name: emoneg-trajectories\nversion: '1.0'\n", None, "version",
                           "expected a semantic version like 1.0.0, got '1.0'"),
    "unknown domain": (BASE + "domains: [debt, mars]\n", None, "domains", "unknown domain 'mars'"),
    "held-out persona in the corpus": (BASE + f"corpus: {{personas: [pushover, {HELD_OUT}]}}\n", None,
                                       "corpus.personas", f"persona '{HELD_OUT}' is held out"),
    "unknown sweep emotion": (BASE + "sweep: {emotions: [anger, rage]}\n", None, "sweep.emotions",
                              "unknown emotion 'rage'"),
    "missing profile": (BASE + "profiles:\n  small: {tasks: {seeds: 1}}\n", "huge", None,
                        "no profile 'huge'; the file defines: small"),
    "not YAML": ("name: [emoneg\nversion: 1.0.0\n", None, None, "not valid YAML"),
    "YAML that is not a mapping": ("- name\n- version\n", None, None, "a build config is a YAML mapping"),
    "control characters": ("name: emoneg\x00\n", None, None, "not valid YAML"),
    "a binary file (a Parquet shard)": (b"PAR1\x15\x04\x15\x80\x80\x02", None, None, "not valid YAML"),
}


def write_config(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_is_refused_naming_the_file_and_field(tmp_path, case):
    content, profile, field, words = BAD_CONFIGS[case]
    path = write_config(tmp_path / "bad.yaml", content)
    with pytest.raises(InputError) as error:
        load_config(path, profile)
    message = str(error.value)
    assert message.startswith(str(path)) and words in message
    assert error.value.field == field
    if field:
        assert f"field '{field}'" in message


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_the_build_command_reports_a_bad_config_in_one_line_and_writes_nothing(tmp_path, capsys, case):
    content, profile, _, words = BAD_CONFIGS[case]
    path, out = write_config(tmp_path / "bad.yaml", content), tmp_path / "out"
    out.mkdir()
    code = main(["build", str(path), "--out", str(out), *(["--profile", profile] if profile else [])])
    stdout, stderr = capsys.readouterr()
    assert code == 2 and stdout == ""
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: ") and words in stderr
    assert list(out.iterdir()) == []


def test_the_build_command_refuses_an_out_path_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "releases"
    out.write_text("not a folder\n")
    code = main(["build", str(CONFIG), "--profile", "small", "--out", str(out), "--quiet"])
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr == f"error: {out}: the output path is a file, expected a folder for releases\n"
    assert out.read_text() == "not a folder\n"


def test_a_profile_may_set_a_section_the_file_leaves_at_its_defaults(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(BASE + "profiles:\n  tiny:\n    shards: {max_episodes: 50}\n")
    config = load_config(path, "tiny")
    assert config.max_episodes_per_shard == 50
    assert config.episodes_per_scenario == 50  # the file's defaults still apply


def test_a_teacher_that_is_not_installed_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch,
                                                                              recognizer):
    monkeypatch.delitem(build_module.TEACHERS, "lm", raising=False)
    path, out = tmp_path / "lm.yaml", tmp_path / "out"
    path.write_text(BASE + "teacher: {kind: lm, model: smollm2}\n")
    out.mkdir()
    code = main(["build", str(path), "--out", str(out), "--quiet"])
    assert code == 2 and "teacher kind 'lm' is not available" in capsys.readouterr().err
    assert list(out.iterdir()) == []
