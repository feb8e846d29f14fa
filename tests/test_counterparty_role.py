"""Trained-vs-trained negotiation: a corpus with the teacher in the counterparty role (`teacher.role:
counterparty`) whose transitions are the counterparty's decisions, and policies trained on it playing the
counterparty role in evaluation (`--counterparty policy:NAME@RUNS_DIR`)."""

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from baselines.evaluate import EvalRequest, counterparty_agent, evaluate
from baselines.iql import IQLConfig, IQLSelector, train_iql
from builders.build import build
from builders.config import load_config
from builders.validate import validate_release
from emoneg_bench.agents.personas import persona_names
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.errors import InputError
from emoneg_bench.features import STATE_FEATURES, state_vector
from emoneg_bench.negotiation import Role
from emoneg_bench.release import load_release_tasks
from leaderboard.scoring import score
from leaderboard.submission import episode_from_row

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "builders" / "configs" / "emoneg-v1-counterparty.yaml"
FOCAL_CONFIG = REPO / "builders" / "configs" / "emoneg-v1.yaml"
OPPONENT_EMOTION = STATE_FEATURES.index(f"opponent_emotion={GOEMOTIONS[0]}")
PREVIOUS_OWN_EMOTION = STATE_FEATURES.index(f"previous_own_emotion={GOEMOTIONS[0]}")


@pytest.fixture(scope="module")
def release(recognizer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("counterparty-release")
    return build(load_config(CONFIG, "small"), out, progress=False, source=CONFIG.name)


@pytest.fixture(scope="module")
def runs(release, tmp_path_factory) -> Path:
    """A runs folder (``emoneg reproduce``'s layout) with IQL trained on the counterparty's decisions."""
    folder = tmp_path_factory.mktemp("runs") / "counterparty-runs"
    config = IQLConfig(steps=50, hidden=(32, 32), batch_size=64, log_every=10, checkpoint_every=50)
    train_iql(release, folder / "iql", config=config, progress=False, role="counterparty")
    return folder


@pytest.fixture(scope="module")
def evaluated(release, runs, recognizer, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results") / "teacher-vs-cp.parquet"
    request = EvalRequest(policy="teacher", release=release, counterparty=f"policy:iql-teacher@{runs}",
                          limit=2)
    evaluate(request, out, progress=False, recognizer=recognizer)
    return out


def rows(release: Path, config: str, split: str = "train") -> list[dict]:
    return [row for path in sorted((release / "data" / config).glob(f"{split}-*.parquet"))
            for row in pq.read_table(path).to_pylist()]


def one_hot(state: list[float], start: int) -> str | None:
    hot = [i for i, x in enumerate(state[start: start + len(GOEMOTIONS)]) if x == 1.0]
    return GOEMOTIONS[hot[0]] if hot else None


# ------------------------------------------------------------------------------ the corpus

def test_the_counterparty_config_builds_a_valid_release(release):
    assert release.name == "emoneg-trajectories-counterparty-small-v2.0.0"
    assert validate_release(release) == []
    manifest = json.loads((release / "MANIFEST.json").read_text())
    assert manifest["builder_config"]["teacher_role"] == "counterparty"


def test_the_teacher_plays_the_counterparty_and_the_personas_the_focal_agent(release):
    for split in ("train", "validation", "fixed_emotion_sweep"):
        episodes = rows(release, "episodes", split)
        assert episodes and {e["focal_agent"] for e in episodes} == {"persona"}
        assert all(e["counterparty_agent"].startswith("teacher:") for e in episodes)
        assert {e["persona"] for e in episodes} <= set(persona_names(held_out=False))
    sweep = rows(release, "episodes", "fixed_emotion_sweep")
    for episode in sweep:
        shown = {t["declared_emotion_name"] for t in episode["turns"] if t["role"] == "counterparty"}
        assert shown <= {episode["counterparty_agent"].removeprefix("teacher:fixed-")}


def test_every_transition_loaded_with_datasets_is_a_counterparty_decision(release):
    from datasets import load_dataset

    transitions = load_dataset(str(release), "transitions", split="train")
    assert len(transitions) > 0 and set(transitions["role"]) == {"counterparty"}
    sft = load_dataset(str(release), "sft", split="train")
    assert set(sft["role"]) == {"counterparty"}
    decisions = sum(t["role"] == "counterparty" for e in rows(release, "episodes") for t in e["turns"])
    assert len(transitions) == len(sft) == decisions


def test_actions_and_states_are_the_counterpartys(release):
    turns = {e["episode_id"]: e["turns"] for e in rows(release, "episodes")}
    for row in rows(release, "transitions"):
        history = turns[row["episode_id"]]
        turn = history[row["turn"]]
        assert turn["role"] == "counterparty" and row["turn"] % 2 == 1
        assert row["action_name"] == turn["declared_emotion_name"]
        # the state sees the focal persona's last message and the counterparty's own previous emotion
        assert one_hot(row["state"], OPPONENT_EMOTION) == history[row["turn"] - 1]["perceived_emotion_name"]
        previous_own = history[row["turn"] - 2]["declared_emotion_name"] if row["turn"] >= 2 else None
        assert one_hot(row["state"], PREVIOUS_OWN_EMOTION) == previous_own
        assert row["judge_score"] == turn["judge_score"] and row["judge_score"] is not None


def test_the_card_describes_the_counterparty_corpus(release):
    card = (release / "README.md").read_text()
    assert "pretty_name: EmoNeg-Bench counterparty-role trajectories 2.0.0" in card
    assert "| `transitions` | " in card and "one counterparty decision" in card
    assert "**Counterparty (teacher)**" in card and "**Focal agents**: the training personas" in card


def test_the_validator_reports_decisions_of_another_role_than_the_teachers(release, tmp_path):
    copy = tmp_path / release.name
    shutil.copytree(release, copy)
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["builder_config"]["teacher_role"] = "focal"
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    problems = validate_release(copy)
    assert problems and all("has decisions of role 'counterparty'" in p.message for p in problems)
    assert {p.where.split("/")[1] for p in problems} == {"transitions", "sft"}


# ------------------------------------------------------------------------------ the config field

def test_the_teacher_role_defaults_to_focal_and_stays_out_of_the_manifest(small_release):
    config = load_config(FOCAL_CONFIG, "small")
    assert config.teacher_role == "focal" and "teacher_role" not in config.to_dict()
    manifest = json.loads((small_release / "MANIFEST.json").read_text())
    assert "teacher_role" not in manifest["builder_config"]
    assert {row["role"] for row in rows(small_release, "transitions")} == {"focal"}


@pytest.mark.parametrize("value", ["opponent", "Counterparty", 1])
def test_a_bad_teacher_role_is_refused_naming_the_file_and_field(tmp_path, value):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: emoneg-trajectories\nversion: 1.0.0\nteacher: {{role: {value}}}\n")
    with pytest.raises(InputError, match="expected one of focal, counterparty") as error:
        load_config(path)
    assert str(error.value).startswith(str(path)) and error.value.field == "teacher.role"


# ------------------------------------------------------------------------------ policy counterparties

def test_a_trained_counterparty_plays_with_the_emotions_its_selector_picks(release, runs, evaluated):
    table = pq.read_table(evaluated).to_pylist()
    assert len(table) == 8  # 2 tasks in each of the 4 domains
    assert {r["counterparty"] for r in table} == {f"policy:iql-teacher@{runs}"}
    assert {r["counterparty_agent"] for r in table} == {"cp:iql-teacher@counterparty-runs"}
    assert {r["focal_agent"] for r in table} == {"teacher"}
    selector = IQLSelector.load(runs / "iql")
    tasks = {t.task_id: t for t in load_release_tasks(release, "test")}
    checked = 0
    for row in table:
        episode = episode_from_row(row, tasks[row["task_id"]], 30)
        for u in episode.turns_of(Role.COUNTERPARTY):
            state = state_vector(episode.utterances[: u.turn], Role.COUNTERPARTY, episode.task.scenario, 30)
            # what the extraction (temperature and fallback, as chosen on validation) can show; one-hot at T = 0
            assert selector.extraction_probabilities(state)[0][GOEMOTIONS.index(u.declared_emotion)] > 0
            checked += 1
    assert checked >= 8


def test_the_tournament_keeps_the_trained_counterparty_apart_from_the_focal_policy(evaluated):
    table = score([evaluated], "tournament", bootstrap=20, anchor="teacher")
    assert {row[1] for row in table.rows} == {"teacher", "cp:iql-teacher@counterparty-runs"}


def test_a_selector_trained_on_focal_decisions_is_refused_as_a_counterparty(runs, tmp_path):
    focal_runs = tmp_path / "focal-runs"
    shutil.copytree(runs / "iql", focal_runs / "iql")
    metadata = json.loads((focal_runs / "iql" / "iql.json").read_text())
    metadata["data"]["role"] = "focal"
    (focal_runs / "iql" / "iql.json").write_text(json.dumps(metadata))
    with pytest.raises(InputError, match="trained on focal transitions"):
        counterparty_agent(f"policy:iql-teacher@{focal_runs}")


@pytest.mark.parametrize("spec, words", [
    ("policy:no-such-policy@{runs}", "unknown policy 'no-such-policy'"),
    ("policy:iql-teacher@{missing}", "no such runs folder"),
    ("policy:iql-teacher@{empty}", "needs a trained iql run"),
    ("policy:iql-teacher", "is not policy:NAME@RUNS_DIR"),
    ("policy:@{runs}", "is not policy:NAME@RUNS_DIR"),
    ("policies:teacher", "expected 'persona', 'teacher', lm:<model spec> or policy:NAME@RUNS_DIR"),
])
def test_a_bad_policy_counterparty_is_one_clear_input_error(runs, tmp_path, spec, words):
    (tmp_path / "empty").mkdir()
    spec = spec.format(runs=runs, missing=tmp_path / "missing", empty=tmp_path / "empty")
    with pytest.raises(InputError, match="counterparty") as error:
        counterparty_agent(spec)
    assert words in str(error.value) and error.value.field == "counterparty"


def test_a_policy_without_trained_artefacts_plays_the_counterparty_from_any_runs_folder(tmp_path):
    agent, who = counterparty_agent(f"policy:teacher@{tmp_path}")
    assert agent.name == f"cp:teacher@{tmp_path.name}"
    assert who == {"counterparty": f"policy:teacher@{tmp_path}"}
