import json
import shutil
import socket
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from builders.build import build, sha256_file
from builders.card import dataset_info
from builders.config import load_config
from builders.publish import publish
from builders.validate import Problem, validate_release
from emoneg_bench.errors import EmoNegError, InputError

CONFIG = Path(__file__).resolve().parents[1] / "builders" / "configs" / "emoneg-v1.yaml"
TRAIN_EPISODES = "data/episodes/train-00001-of-00003.parquet"


@pytest.fixture(scope="module")
def built(recognizer, tmp_path_factory):
    return build(load_config(CONFIG, "small"), tmp_path_factory.mktemp("releases"), progress=False)


@pytest.fixture
def release(built, tmp_path):
    """A private copy of the built release to tamper with."""
    return Path(shutil.copytree(built, tmp_path / built.name))


@pytest.fixture
def no_network(monkeypatch):
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(huggingface_hub, "HfApi", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def where(problems: list[Problem]) -> set[str]:
    return {p.where for p in problems}


def rewrite(release: Path, rel: str, table: pa.Table) -> None:
    """Replace one shard and bring the manifest and the card's sizes up to date, as a build would."""
    pq.write_table(table, release / rel, compression="zstd")
    shards = {}
    for path in sorted((release / "data").glob("*/*.parquet")):
        shards[path.relative_to(release).as_posix()] = {
            "config": path.parent.name, "split": path.name.rsplit("-", 3)[0],
            "rows": pq.ParquetFile(path).metadata.num_rows, "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}
    manifest = json.loads((release / "MANIFEST.json").read_text())
    manifest["shards"] = {p: {k: m[k] for k in ("config", "split", "rows", "sha256")} for p, m in shards.items()}
    (release / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    edit_card(release, lambda front: front.update(dataset_info=dataset_info(shards)))


def edit_card(release: Path, change) -> None:
    _, front, body = (release / "README.md").read_text().split("---\n", 2)
    front = yaml.safe_load(front)
    change(front)
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    (release / "README.md").write_text(f"---\n{dumped}---\n{body}")


def test_a_fresh_release_has_no_problems(built):
    assert validate_release(built) == []


def test_a_missing_folder_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no release folder"):
        validate_release(tmp_path / "nothing-v1.0.0")


def test_a_changed_byte_is_a_sha256_problem_naming_the_shard(release):
    path = release / TRAIN_EPISODES
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert any(p.where == TRAIN_EPISODES and "sha256" in p.message for p in validate_release(release))


def test_a_deleted_shard_is_reported_by_the_manifest_and_the_card(release):
    (release / TRAIN_EPISODES).unlink()
    problems = validate_release(release)
    assert Problem("MANIFEST.json", f"lists {TRAIN_EPISODES}, which is not in the release") in problems
    assert any(p.where == "README.md: dataset_info" and "episodes/train num_examples" in p.message
               for p in problems)
    assert any(p.where == "data/episodes/train-*" and "shard numbers 1 are missing" in p.message for p in problems)


def test_a_pickle_is_refused(release):
    (release / "evil.pkl").write_bytes(b"\x80\x04N.")
    assert [p for p in validate_release(release) if p.where == "evil.pkl"][0].message.startswith("is a pickle")


def test_a_symlink_is_refused(release):
    (release / "data" / "episodes" / "link.parquet").symlink_to(release / TRAIN_EPISODES)
    problems = validate_release(release)
    assert Problem("data/episodes/link.parquet", "is a symbolic link; a release holds plain files only") in problems


def test_an_executable_is_refused(release):
    script = release / "data" / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    assert Problem("data/run.sh", "is executable; a release holds data files only") in validate_release(release)


def test_a_wrong_num_examples_in_the_card_is_reported(release):
    def change(front):
        front["dataset_info"][0]["splits"][1]["num_examples"] = 7

    edit_card(release, change)
    problems = validate_release(release)
    assert [p.message for p in problems] == ["episodes/train num_examples is 7, the files have 288 rows"]


def test_a_shard_with_a_cast_column_has_a_features_problem(release):
    table = pq.read_table(release / TRAIN_EPISODES)
    column = table.schema.get_field_index("utility")
    cast = table.cast(table.schema.set(column, pa.field("utility", pa.float32())))
    rewrite(release, TRAIN_EPISODES, cast)
    problems = validate_release(release)
    assert len(problems) == 1
    assert problems[0].where == TRAIN_EPISODES
    assert "features differ from the 'episodes' schema: utility is Value('float32')" in problems[0].message


def test_a_test_scenario_in_a_train_shard_breaks_disjointness(release):
    test_id = pq.read_table(release / "data/scenarios/test-00000-of-00001.parquet").column("scenario_id")[0].as_py()
    table = pq.read_table(release / TRAIN_EPISODES)
    ids = table.column("scenario_id").to_pylist()
    ids[0] = test_id
    column = table.schema.get_field_index("scenario_id")
    rewrite(release, TRAIN_EPISODES, table.set_column(column, table.schema.field(column), pa.array(ids)))
    problems = validate_release(release)
    assert problems == [Problem(TRAIN_EPISODES, f"contains test scenarios {test_id!r}; test scenarios must never "
                                                "appear in a trajectory")]


def test_a_held_out_persona_in_the_test_tasks_is_reported(release):
    rel = "data/tasks/test-00000-of-00001.parquet"
    table = pq.read_table(release / rel)
    unseen = pq.read_table(release / "data/tasks/test_unseen_counterparty-00000-of-00001.parquet")
    persona = unseen.column("persona")[0].as_py()
    column = table.schema.get_field_index("persona")
    rewrite(release, rel, table.set_column(column, table.schema.field(column),
                                           pa.array([persona] * table.num_rows)))
    assert validate_release(release) == [Problem(rel, f"uses personas that are not training personas: {persona!r}")]


def test_every_problem_is_reported_at_once(release):
    (release / TRAIN_EPISODES).unlink()
    (release / "model.joblib").write_bytes(b"x")
    manifest = json.loads((release / "MANIFEST.json").read_text())
    manifest["version"] = "1.0.1"
    (release / "MANIFEST.json").write_text(json.dumps(manifest))
    places = where(validate_release(release))
    assert {"model.joblib", "MANIFEST.json", "README.md: dataset_info", "README.md: pretty_name", "CHANGELOG.md",
            "."} <= places


def test_publish_dry_run_describes_the_release_without_the_network(built, no_network):
    plan = publish(built, "emoneg/trajectories", dry_run=True)
    files = sum(1 for p in built.rglob("*") if p.is_file())
    assert "https://huggingface.co/datasets/emoneg/trajectories" in plan
    assert "tag: v2.0.0" in plan
    assert f"files: {files} (" in plan


def test_publish_refuses_an_invalid_release_before_the_network(release, no_network):
    (release / "evil.pkl").write_bytes(b"x")
    with pytest.raises(InputError, match="the release is not valid, nothing was uploaded: evil.pkl: is a pickle"):
        publish(release, "emoneg/trajectories")


@pytest.mark.parametrize("repo_id", ["trajectories", "emoneg/trajectories/v1", "emoneg/-bad", "emo neg/x", "a/b--c"])
def test_publish_refuses_a_malformed_repo_id(built, no_network, repo_id):
    with pytest.raises(InputError, match="expected a Hub repository id ORG/NAME"):
        publish(built, repo_id, dry_run=True)


def test_publish_offline_is_one_clear_error(built, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(EmoNegError) as error:
        publish(built, "emoneg/trajectories")
    assert str(error.value) == "cannot publish while HF_HUB_OFFLINE is set; unset it to upload to the Hub"


class FakeHub:
    """Records the calls publish makes; ``tags`` are the tags already on the Hub."""

    def __init__(self, tags=(), fail=None):
        self.calls, self.tags, self.fail = [], list(tags), fail

    def __call__(self, token=None):
        self.calls.append(("HfApi", token))
        return self

    def list_repo_refs(self, repo_id, repo_type):
        self.calls.append(("list_repo_refs", repo_id))
        if self.fail:
            raise self.fail
        return types.SimpleNamespace(tags=[types.SimpleNamespace(name=t) for t in self.tags])

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs["commit_message"]))
        return types.SimpleNamespace(oid="abc123")

    def create_tag(self, repo_id, **kwargs):
        self.calls.append(("create_tag", repo_id, kwargs))


@pytest.fixture
def online(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)

    def install(hub: FakeHub) -> FakeHub:
        monkeypatch.setattr(huggingface_hub, "HfApi", hub)
        return hub

    return install


def test_publish_creates_uploads_and_tags_the_uploaded_commit(built, online):
    hub = online(FakeHub())
    message = publish(built, "emoneg/trajectories", token="hf_x", private=True)
    assert [call[0] for call in hub.calls] == ["HfApi", "list_repo_refs", "create_repo", "upload_folder",
                                               "create_tag"]
    assert hub.calls[0] == ("HfApi", "hf_x")
    assert hub.calls[2][2] == {"repo_type": "dataset", "exist_ok": True, "private": True}
    assert hub.calls[3] == ("upload_folder", "Release 2.0.0")
    assert hub.calls[4] == ("create_tag", "emoneg/trajectories",
                            {"tag": "v2.0.0", "repo_type": "dataset", "revision": "abc123"})
    assert message.endswith("to https://huggingface.co/datasets/emoneg/trajectories and tagged v2.0.0")


def test_publish_refuses_a_version_already_tagged_on_the_hub(built, online):
    hub = online(FakeHub(tags=["v2.0.0"]))
    with pytest.raises(InputError, match="already has tag v2.0.0 and versions are immutable"):
        publish(built, "emoneg/trajectories")
    assert "upload_folder" not in [call[0] for call in hub.calls]


def test_publish_turns_a_hub_refusal_into_one_sentence(built, online):
    from huggingface_hub.errors import HfHubHTTPError

    refusal = HfHubHTTPError("401 Unauthorized: invalid credentials\nrequest id: 1",
                             response=types.SimpleNamespace(headers={}, request=None))
    online(FakeHub(fail=refusal))
    with pytest.raises(EmoNegError) as error:
        publish(built, "emoneg/trajectories")
    assert str(error.value) == ("could not publish to emoneg/trajectories on the Hub: "
                                "401 Unauthorized: invalid credentials")
