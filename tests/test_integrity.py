"""The verified door to a release (emoneg_bench.integrity), content-keyed caches, and outputs that are
never overwritten or half-written (emoneg_bench.outputs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from release_tamper import copy_release, flip_byte, reseal, rewrite_shard, scaled

from emoneg_bench import integrity
from emoneg_bench.cli import main
from emoneg_bench.errors import InputError
from emoneg_bench.outputs import check_output, folder_lock, write_together
from emoneg_bench.release import load_release_dataset, open_release, verify_release

SHARD = "data/transitions/train-00000-of-00003.parquet"


@pytest.fixture
def release(small_release, tmp_path) -> Path:
    return copy_release(small_release, tmp_path / "copy")


def forget_this_process() -> None:
    """What a new process starts with: nothing verified in memory (the on-disk digest cache stays)."""
    integrity._VERIFIED.clear()


# ---- the door --------------------------------------------------------------------------------------

def test_a_genuine_release_opens_with_its_manifest(release):
    verified = verify_release(release, ("transitions", "tasks"), "train")
    assert verified.manifest == json.loads((release / "MANIFEST.json").read_text())
    assert {s.name for s in verified.shards} == set(verified.manifest["shards"])


def test_a_second_open_hashes_no_shard(release, monkeypatch):
    open_release(release)
    forget_this_process()
    import emoneg_bench.hashing

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed again")

    monkeypatch.setattr(emoneg_bench.hashing, "sha256_file", no_hashing)
    started = time.perf_counter()
    open_release(release)
    assert time.perf_counter() - started < 1.0


def test_a_shard_changed_and_given_back_its_mtime_is_hashed_again(release):
    open_release(release)
    forget_this_process()
    stat = (release / SHARD).stat()
    flip_byte(release / SHARD, 100)
    os.utime(release / SHARD, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the digest cache also keys on ctime
    with pytest.raises(InputError, match=f"{SHARD}: sha256 is"):
        open_release(release)


def test_equal_bytes_share_a_cache_key_and_a_doctored_copy_with_the_same_name_does_not(release, small_release,
                                                                                       tmp_path):
    doctored = copy_release(small_release, tmp_path / "doctored")
    rewrite_shard(doctored / SHARD, scaled("reward", 100.0))
    reseal(doctored)
    genuine, twin, other = (verify_release(r) for r in (small_release, release, doctored))
    assert other.manifest["release"] == genuine.manifest["release"]
    assert genuine.content_key == twin.content_key != other.content_key


def test_a_requested_split_that_the_release_lacks_is_named(release):
    with pytest.raises(InputError, match="has no 'test' split in its transitions config"):
        verify_release(release, ("transitions",), "test")


def test_a_symlinked_shard_is_refused(release, tmp_path):
    moved = tmp_path / "elsewhere.parquet"
    shutil.move(release / SHARD, moved)
    (release / SHARD).symlink_to(moved)
    with pytest.raises(InputError, match="is not a plain file"):
        open_release(release)


# ---- caches keyed by content -------------------------------------------------------------------------

def test_datasets_loads_of_two_releases_with_the_same_name_never_share_a_cache(release, small_release, tmp_path):
    doctored = copy_release(small_release, tmp_path / "doctored")
    rewrite_shard(doctored / SHARD, scaled("reward", 100.0))
    reseal(doctored)
    poisoned = load_release_dataset(doctored, "transitions", "train")
    genuine = load_release_dataset(release, "transitions", "train")
    assert max(poisoned["reward"]) > 10 * max(genuine["reward"]) > 0
    assert {Path(f["filename"]).parent.parent for f in genuine.cache_files}.isdisjoint(
        {Path(f["filename"]).parent.parent for f in poisoned.cache_files})


def _train(release: Path, out: Path) -> dict:
    from baselines.iql import IQLConfig, train_iql

    train_iql(release, out, config=IQLConfig(steps=30, log_every=10, checkpoint_every=1000), progress=False,
              device="cpu")
    return json.loads((out / "iql.json").read_text())


def test_after_a_doctored_copy_was_loaded_in_place_the_genuine_release_trains_like_on_a_clean_machine(
        small_release, tmp_path, monkeypatch):
    """The cache-poisoning sequence: the release is doctored in place (rewards ×100, resealed so it passes
    as a release) and loaded, by `datasets` directly and by a trainer; then its genuine bytes and times
    are put back. Training now must give the weights a machine that never saw the doctored copy gives,
    and record the genuine manifest."""
    import datasets

    release = copy_release(small_release, tmp_path / "in-place")
    originals = {p: (p.read_bytes(), p.stat()) for p in (release / SHARD, release / "MANIFEST.json",
                                                         release / "README.md")}
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    rewrite_shard(release / SHARD, scaled("reward", 100.0))
    reseal(release)
    datasets.load_dataset(str(release), "transitions", split="train")  # the user's own load, default cache
    doctored = _train(release, tmp_path / "doctored-run")
    for path, (data, stat) in originals.items():
        path.write_bytes(data)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    forget_this_process()
    after = _train(release, tmp_path / "after")

    monkeypatch.setenv("EMONEG_CACHE", str(tmp_path / "clean-machine"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "clean-hf-cache"))
    forget_this_process()
    clean = _train(copy_release(small_release, tmp_path / "untouched"), tmp_path / "clean")
    assert after["model_sha256"] == clean["model_sha256"] != doctored["model_sha256"]
    assert after["data"]["manifest_sha256"] == clean["data"]["manifest_sha256"] != doctored["data"]["manifest_sha256"]


# ---- outputs -------------------------------------------------------------------------------------------

def test_a_failing_writer_leaves_every_target_as_it_was(tmp_path):
    main_out, side = tmp_path / "out.csv", tmp_path / "out.rejections.csv"
    main_out.write_text("old main")
    side.write_text("old side")

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_together({main_out: lambda tmp: tmp.write_text("new main"), side: fails})
    assert (main_out.read_text(), side.read_text()) == ("old main", "old side")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.rejections.csv"]


def test_an_output_containing_an_input_is_refused(tmp_path):
    (tmp_path / "runs" / "sft").mkdir(parents=True)
    with pytest.raises(InputError, match="contains .*sft, an input"):
        check_output(tmp_path / "runs", overwrite=True, reads=[tmp_path / "runs" / "sft"])


def test_a_clean_reimport_removes_the_earlier_rejections(tmp_path, capsys):
    header = ("Case_ID,Disaster_Type,Survivor_Condition,Estimated_Survivor_Endurance(minutes),"
              "Rescue_Team_ETA(minutes),Critical_Needs,Key_Negotiation_Argument_By_RoboDog")
    messy = tmp_path / "disaster.csv"
    messy.write_text(f"{header}\nD-1,Flood,Cold,45,120,Water,Wait\nD-2,Flood,Cold,120,45,Water,Wait\n")
    out = tmp_path / "disaster.parquet"
    assert main(["scenarios", "import", "--domain", "disaster", str(messy), "--out", str(out)]) == 0
    assert (tmp_path / "disaster.rejections.csv").is_file()
    messy.write_text(f"{header}\nD-1,Flood,Cold,45,120,Water,Wait\n")
    assert main(["scenarios", "import", "--domain", "disaster", str(messy), "--out", str(out), "--overwrite"]) == 0
    assert not (tmp_path / "disaster.rejections.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disaster.csv", "disaster.parquet"]


def test_overwriting_a_finished_iql_run_trains_aside_and_swaps_it_in(small_release, tmp_path, capsys):
    out = tmp_path / "iql"
    argv = ["train", "iql", "--release", str(small_release), "--out", str(out), "--steps", "20", "--quiet",
            "--device", "cpu"]
    assert main(argv) == 0
    first = (out / "iql.json").read_text()
    assert main([*argv[:6], "--steps", "30", "--quiet", "--device", "cpu", "--overwrite"]) == 0
    assert json.loads((out / "iql.json").read_text())["steps"] == 30 != json.loads(first)["steps"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iql"]


def test_a_build_lock_held_by_a_killed_process_is_free_again(tmp_path):
    lock = tmp_path / ".release.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from emoneg_bench.outputs import folder_lock\n"
        f"with folder_lock(Path({str(lock)!r}), 'r'):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"in progress by PID {holder.pid}"), folder_lock(lock, "r"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(lock, "r"):
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists()
