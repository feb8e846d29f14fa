"""Leaderboard submissions: an honest one is accepted and replays identically; forged ones are rejected
with a problem that says what is wrong (DESIGN.md section 9)."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.replay import replay
from emoneg_bench.agents.teacher import TeacherAgent
from emoneg_bench.emotions import EMOTION_INDEX
from emoneg_bench.engine import Engine
from emoneg_bench.negotiation import Role
from emoneg_bench.schema import features
from leaderboard import submission
from leaderboard.submission import (
    EPISODES,
    METADATA,
    episodes_from_parquet,
    load_release_tasks,
    release_manifest,
    stored_precision,
    validate_submission,
    write_submission,
)

ANGRY = "This is outrageous and I am absolutely furious about it! "


@pytest.fixture(scope="module")
def release(tmp_path_factory, recognizer) -> Path:
    from builders.build import build
    from builders.config import load_config

    return build(load_config("builders/configs/emoneg-v1.yaml", "small"), tmp_path_factory.mktemp("release"),
                 progress=False)


@pytest.fixture(scope="module")
def max_turns(release) -> int:
    return release_manifest(release)["builder_config"]["max_turns"]


@pytest.fixture(scope="module")
def honest_episodes(release, recognizer, max_turns):
    tasks = load_release_tasks(release, "test")
    return list(Engine(recognizer, max_turns).run(tasks, TeacherAgent("random"), PersonaAgent()))


@pytest.fixture(scope="module")
def honest(tmp_path_factory, release, honest_episodes) -> Path:
    metadata = {"name": "random teacher", "contact": "bench@example.org", "model": "teacher:random",
                "training_data": release_manifest(release)["version"], "licence": "apache-2.0", "seeds": [0],
                "description": "The scripted teacher with random emotions."}
    return write_submission(tmp_path_factory.mktemp("honest"), honest_episodes, metadata)


def copy_of(honest: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "submission"
    shutil.copytree(honest, folder)
    return folder


def forged(honest: Path, tmp_path: Path, edit) -> Path:
    """A copy of the honest submission whose episode rows went through ``edit(rows) -> rows``."""
    folder = copy_of(honest, tmp_path)
    rows = edit(pq.read_table(folder / EPISODES).to_pylist())
    pq.write_table(pa.Table.from_pylist(rows, schema=features("episodes").arrow_schema), folder / EPISODES)
    return folder


def rejected_for(report, *words: str) -> str:
    assert not report.accepted
    assert report.replayed == []
    matching = [p for p in report.problems if all(w in p for w in words)]
    assert matching, f"no problem mentions {words}: {report.problems}"
    return matching[0]


def test_release_tasks_rebuild_the_scenarios_the_episodes_were_played_on(release):
    tasks = load_release_tasks(release, "test")
    rows = pq.read_table(next((release / "data" / "tasks").glob("test-*.parquet"))).to_pylist()
    assert [t.task_id for t in tasks] == [r["task_id"] for r in rows]
    assert {t.scenario.domain for t in tasks} == {"debt", "disaster", "hospital", "student"}
    assert all(type(t.scenario).__name__ != "Scenario" for t in tasks)


def test_episodes_from_parquet_inverts_episode_row(honest, honest_episodes, max_turns):
    tasks_by_id = {e.task.task_id: e.task for e in honest_episodes}
    rebuilt = episodes_from_parquet(honest / EPISODES, tasks_by_id, max_turns)
    assert rebuilt == [stored_precision(e) for e in honest_episodes]
    assert rebuilt[0].utterances[0].role is Role.FOCAL


def test_honest_submission_is_accepted_and_replays_to_the_submitted_episodes(honest, release, recognizer,
                                                                             honest_episodes):
    report = validate_submission(honest, release, recognizer)
    assert report.accepted, report.problems
    assert report.problems == []
    assert report.replayed == [stored_precision(e) for e in honest_episodes]


def test_changed_counterparty_line_is_rejected(honest, release, recognizer, tmp_path):
    def edit(rows):
        rows[3]["turns"][1]["text"] = "Fine, you win, I will take whatever you offer."
        return rows

    problem = rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "replay")
    assert "turn 1" in problem and "counterparty message differs" in problem


def test_changed_ending_is_rejected(honest, release, recognizer, tmp_path):
    def edit(rows):
        row = next(r for r in rows if r["ending_name"] != "agreement")
        row["ending_name"], row["utility"] = "agreement", 1.0
        return rows

    rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "ending differs")


def test_inflated_utility_alone_is_rejected(honest, release, recognizer, tmp_path):
    def edit(rows):
        rows[0]["utility"] = 1.0 if rows[0]["utility"] != 1.0 else 0.5
        return rows

    rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "ending differs")


def test_missing_task_is_rejected(honest, release, recognizer, tmp_path):
    rows = pq.read_table(honest / EPISODES).to_pylist()
    problem = rejected_for(validate_submission(forged(honest, tmp_path, lambda r: r[1:]), release, recognizer),
                           "missing")
    assert rows[0]["task_id"] in problem and "1 of the" in problem


def test_duplicated_task_is_rejected(honest, release, recognizer, tmp_path):
    rows = pq.read_table(honest / EPISODES).to_pylist()
    problem = rejected_for(validate_submission(forged(honest, tmp_path, lambda r: [*r, r[5]]), release, recognizer),
                           "more than once")
    assert rows[5]["task_id"] in problem


def test_wrong_release_version_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    metadata = yaml.safe_load((folder / METADATA).read_text())
    (folder / METADATA).write_text(yaml.safe_dump({**metadata, "training_data": "0.9.0"}))
    problem = rejected_for(validate_submission(folder, release, recognizer), "training_data")
    assert "0.9.0" in problem and release_manifest(release)["version"] in problem


def test_metadata_with_wrong_types_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    metadata = yaml.safe_load((folder / METADATA).read_text())
    del metadata["contact"]
    (folder / METADATA).write_text(yaml.safe_dump({**metadata, "seeds": ["zero"]}))
    report = validate_submission(folder, release, recognizer)
    rejected_for(report, "'contact'", "missing")
    rejected_for(report, "'seeds'", "integers")


def test_nan_utility_is_rejected(honest, release, recognizer, tmp_path):
    def edit(rows):
        rows[2]["utility"] = math.nan
        return rows

    problem = rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "NaN")
    assert "'utility'" in problem and "rows 2" in problem


def test_wrong_column_type_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    table = pq.read_table(folder / EPISODES)
    table = table.set_column(table.schema.get_field_index("utility"), "utility",
                             table.column("utility").cast(pa.string()))
    pq.write_table(table, folder / EPISODES)
    rejected_for(validate_submission(folder, release, recognizer), "'utility'", "expected double")


def test_roles_must_alternate_starting_with_focal(honest, release, recognizer, tmp_path):
    def edit(rows):
        rows[4]["turns"][0]["role"] = "counterparty"
        return rows

    rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "row 4", "focal first")


def test_oversized_file_is_rejected(honest, release, recognizer, tmp_path, monkeypatch):
    monkeypatch.setitem(submission.MAX_BYTES, EPISODES, 1000)
    rejected_for(validate_submission(copy_of(honest, tmp_path), release, recognizer), EPISODES, "limit")


def test_pickle_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    (folder / "model.pkl").write_bytes(b"\x80\x04N.")
    rejected_for(validate_submission(folder, release, recognizer), "model.pkl", "pickle")


def test_link_leaving_the_folder_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the submission")
    os.symlink(outside, folder / "README.md")
    report = validate_submission(folder, release, recognizer)
    rejected_for(report, "README.md", "link")
    rejected_for(report, "README.md", "outside the submission folder")


def test_executable_script_is_rejected(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    (folder / "README.md").write_text("#!/bin/sh\necho hello\n")
    problem = rejected_for(validate_submission(folder, release, recognizer), "README.md", "executable")
    assert "refused" in problem


def test_readme_is_allowed(honest, release, recognizer, tmp_path):
    folder = copy_of(honest, tmp_path)
    (folder / "README.md").write_text("# Random teacher\n")
    assert validate_submission(folder, release, recognizer).accepted


def test_edited_focal_text_is_caught_by_the_counterparty_reply(honest, honest_episodes, release, recognizer,
                                                              max_turns, tmp_path):
    """A forger who edits a focal message and fixes up its perceived emotion is still caught: the
    official counterparty reacts to the new emotion and its recorded reply no longer matches."""
    rows = pq.read_table(honest / EPISODES).to_pylist()

    def angrier(episode):
        first = episode.utterances[0]
        label, score = recognizer.perceive([ANGRY + first.text])[0]
        return dataclasses.replace(episode, utterances=(dataclasses.replace(
            first, text=ANGRY + first.text, perceived_emotion=label, perceived_confidence=score),
            *episode.utterances[1:]))

    edited = [angrier(e) for e in honest_episodes]
    replies = replay(edited, PersonaAgent(), Engine(recognizer, max_turns))
    changed = next(i for i, (a, b) in enumerate(zip(honest_episodes, replies, strict=True))
                   if len(a.utterances) > 1 and len(b.utterances) > 1 and a.utterances[1] != b.utterances[1])
    assert edited[changed].utterances[0].perceived_emotion != honest_episodes[changed].utterances[0].perceived_emotion

    def edit(rows):
        first = rows[changed]["turns"][0]
        new = edited[changed].utterances[0]
        first["text"], first["perceived_emotion_name"] = new.text, new.perceived_emotion
        first["perceived_emotion"], first["perceived_confidence"] = (EMOTION_INDEX[new.perceived_emotion],
                                                                     new.perceived_confidence)
        return rows

    problem = rejected_for(validate_submission(forged(honest, tmp_path, edit), release, recognizer), "replay")
    assert rows[changed]["task_id"] in problem and "counterparty message differs" in problem
    assert f"task {rows[changed]['task_id']} turn 0" not in problem  # the focal turn itself was made consistent


def test_optional_unseen_counterparty_split_must_be_complete(honest, honest_episodes, release, recognizer,
                                                           max_turns, tmp_path):
    unseen = load_release_tasks(release, "test_unseen_counterparty")[:10]
    extra = list(Engine(recognizer, max_turns).run(unseen, TeacherAgent("random"), PersonaAgent()))
    metadata = yaml.safe_load((honest / METADATA).read_text())
    folder = write_submission(tmp_path / "submission", [*honest_episodes, *extra], metadata,
                              {e.task.task_id: "test_unseen_counterparty" for e in extra})
    problem = rejected_for(validate_submission(folder, release, recognizer), "test_unseen_counterparty", "missing")
    assert extra[0].task.task_id not in problem


def test_the_cli_accepts_an_honest_submission_and_rejects_a_forged_one(honest, release, tmp_path, capsys):
    from emoneg_bench.cli import main

    assert main(["leaderboard", "validate", str(honest), "--release", str(release)]) == 0
    assert capsys.readouterr().out.startswith("accepted: ")
    folder = copy_of(honest, tmp_path)
    (folder / "model.pkl").write_bytes(b"\x80\x04.")
    assert main(["leaderboard", "validate", str(folder), "--release", str(release)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("rejected:") and "model.pkl" in out


def test_an_accepted_submission_joins_the_board_with_its_replayed_episodes(honest, release, tmp_path, recognizer):
    import json

    import pyarrow.parquet as pq

    from emoneg_bench.errors import InputError
    from leaderboard.board import submit
    from leaderboard.scoring import score

    board = tmp_path / "board"
    report, entry = submit(honest, release, board, recognizer=recognizer)
    assert report.accepted and entry == board / "random-teacher"
    assert sorted(p.name for p in entry.iterdir()) == ["entry.json", "episodes.parquet"]
    table = pq.read_table(entry / "episodes.parquet")
    assert table.num_rows == len(report.replayed) == len(load_release_tasks(release, "test"))
    meta = json.loads((entry / "entry.json").read_text())
    assert meta["release_version"] == release_manifest(release)["version"] and meta["episodes"] == table.num_rows
    assert [r[1] for r in score([entry / "episodes.parquet"], "main", bootstrap=200).rows] == ["teacher:random"]
    with pytest.raises(InputError, match="already has an entry 'random-teacher'"):
        submit(honest, release, board, recognizer=recognizer)


def test_a_rejected_submission_writes_nothing_to_the_board(honest, release, tmp_path, recognizer):
    from leaderboard.board import submit

    folder = copy_of(honest, tmp_path)
    (folder / "weights.pkl").write_bytes(b"\x80\x04.")
    board = tmp_path / "board"
    report, entry = submit(folder, release, board, recognizer=recognizer)
    assert not report.accepted and entry is None and not board.exists()
