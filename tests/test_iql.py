"""The IQL emotion selector (DESIGN.md section 8): it recovers known best emotions, trains reproducibly and
resumably on a release read with `datasets`, reloads to the same outputs without torch, refuses bad input
in one sentence, and decides from exactly the state the dataset records for the same decision."""

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from baselines import iql
from baselines.iql import (
    IQLConfig,
    IQLSelector,
    Transitions,
    fit_iql,
    load_transitions,
    preferred_emotions,
    train_iql,
)
from builders import plan
from builders.config import load_config
from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.teacher import EmotionSchedule, TeacherAgent, UniformSchedule
from emoneg_bench.cli import main
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.engine import Engine
from emoneg_bench.errors import InputError
from emoneg_bench.features import STATE_DIM, STATE_FEATURES, state_vector
from emoneg_bench.hashing import sha256_file
from emoneg_bench.release import load_release_tasks
from emoneg_bench.rewards import episode_decisions

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "builders" / "configs" / "emoneg-v1.yaml"
FAST = IQLConfig(steps=300, hidden=(32, 32), batch_size=64, log_every=50, checkpoint_every=100)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these networks are small, and on a shared machine a second thread waiting for a
    busy core at every op makes each step many times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(small_release, tmp_path_factory) -> Path:
    return train_iql(small_release, tmp_path_factory.mktemp("iql") / "run", config=FAST, progress=False)


def curve(run: Path) -> list[dict]:
    with open(run / "curves.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------ what IQL learns

def two_step_task(best: list[int], repeats: int, seed: int = 0) -> tuple[Transitions, np.ndarray]:
    """Each of len(best) opening states (one perceived emotion each) has one emotion that leads to a
    state where every emotion earns 1; all others lead to a state that earns 0. The opening reward is 0,
    so only V-bootstrapping through the second state reveals the best emotion. Behaviour: every emotion
    equally often, in random order. Returns the transitions and the opening states."""
    rng = np.random.default_rng(seed)
    openings = np.zeros((len(best), STATE_DIM), np.float32)
    openings[np.arange(len(best)), STATE_FEATURES.index(f"opponent_emotion={GOEMOTIONS[0]}") + np.arange(len(best))] = 1
    good, bad = np.zeros(STATE_DIM, np.float32), np.zeros(STATE_DIM, np.float32)
    good[0], bad[0] = 0.5, 0.5  # progress
    good[STATE_FEATURES.index("previous_own_emotion=joy")] = 1
    bad[STATE_FEATURES.index("previous_own_emotion=anger")] = 1
    clusters, actions = np.divmod(rng.permutation(len(best) * len(GOEMOTIONS) * repeats) % (len(best) * len(GOEMOTIONS)),
                                  len(GOEMOTIONS))
    reached = np.array(best)[clusters] == actions
    n = len(actions)
    second = np.where(reached[:, None], good, bad)
    return Transitions(
        states=np.concatenate([openings[clusters], second]),
        actions=np.concatenate([actions, rng.integers(0, len(GOEMOTIONS), n)]).astype(np.int64),
        rewards=np.concatenate([np.zeros(n), reached.astype(np.float32)]).astype(np.float32),
        next_states=np.concatenate([second, np.zeros((n, STATE_DIM))]).astype(np.float32),
        terminated=np.concatenate([np.zeros(n, bool), np.ones(n, bool)]),
        personas=np.array(["synthetic"] * 2 * n), domains=("synthetic",),
        release={"release": "two-step-task", "best": best, "repeats": repeats, "seed": seed},
    ), openings


def test_iql_recovers_the_best_emotion_of_every_state_from_random_behaviour(tmp_path):
    best = [3, 17, 0, 27, 9, 22]
    data, openings = two_step_task(best, repeats=8)
    # a faster target and larger steps than the defaults, so the two-step chain is learnt in seconds
    config = IQLConfig(steps=800, hidden=(32, 32), batch_size=128, tau=0.05, critic_lr=3e-3, value_lr=3e-3,
                       policy_lr=3e-3, log_every=100, checkpoint_every=800)
    selector = IQLSelector.load(fit_iql(data, tmp_path, config, progress=False))
    assert selector.choose_emotions(openings) == [GOEMOTIONS[a] for a in best]
    assert list(selector.q_values(openings).argmax(axis=1)) == best
    advantages = np.array([selector.advantages(openings, [a] * len(best)) for a in range(len(GOEMOTIONS))]).T
    assert list(advantages.argmax(axis=1)) == best
    assert (advantages[np.arange(len(best)), best] > 0.5).all()  # ≈ γ·1 − V(opening)


# ------------------------------------------------------------------------------ training on a release

def test_training_lowers_the_losses_and_records_what_it_trained_on(trained, small_release):
    rows = curve(trained)
    assert [int(r["step"]) for r in rows] == list(range(50, 301, 50))
    assert float(rows[-1]["critic_loss"]) < 0.8 * float(rows[0]["critic_loss"])
    for loss in ("value_loss", "policy_loss", "mean_advantage"):
        assert len({r[loss] for r in rows}) == len(rows)  # every logged window differs: it moves
    assert sorted(p.name for p in trained.iterdir()) == ["curves.csv", "iql.json", "iql.safetensors"]
    metadata = json.loads((trained / "iql.json").read_text())
    manifest = json.loads((small_release / "MANIFEST.json").read_text())
    assert metadata["data"] == {"release": manifest["release"], "name": manifest["name"],
                                "version": manifest["version"], "split": "train", "domain": "all", "role": "focal",
                                "manifest_sha256": sha256_file(small_release / "MANIFEST.json")}
    assert metadata["config"] == FAST.to_dict() and metadata["steps"] == 300
    assert metadata["state_features"] == list(STATE_FEATURES) and metadata["actions"] == list(GOEMOTIONS)
    assert metadata["final_losses"]["critic_loss"] == pytest.approx(float(rows[-1]["critic_loss"]), rel=1e-4)
    assert metadata["model_sha256"] == sha256_file(trained / "iql.safetensors")


def test_the_saved_selector_computes_what_the_training_networks_compute(trained, small_release):
    import torch
    from safetensors.torch import load_file

    tensors = load_file(trained / "iql.safetensors")
    nets = {name: [(tensors[f"{name}.weight.{i}"], tensors[f"{name}.bias.{i}"]) for i in range(3)]
            for name in ("q1", "q2", "value", "policy")}
    states = load_transitions(small_release, "validation").states
    # the networks read standardised states (CORL's normalisation, stored with the weights)
    x = (torch.from_numpy(states) - tensors["state_mean"]) / tensors["state_std"]
    selector = IQLSelector.load(trained)
    with torch.no_grad():
        np.testing.assert_allclose(selector.policy_logits(states), iql.mlp(nets["policy"], x).numpy(), atol=1e-5)
        np.testing.assert_allclose(selector.values(states), iql.mlp(nets["value"], x).numpy()[:, 0], atol=1e-5)
        q = torch.min(iql.mlp(nets["q1"], x), iql.mlp(nets["q2"], x)).numpy()
    np.testing.assert_allclose(selector.q_values(states), q, atol=1e-5)
    again = IQLSelector.load(trained)
    assert again.choose_emotions(states) == selector.choose_emotions(states)
    np.testing.assert_array_equal(again.policy_logits(states), selector.policy_logits(states))
    actions = np.arange(len(states)) % len(GOEMOTIONS)
    np.testing.assert_allclose(selector.advantages(states, actions),
                               q[np.arange(len(states)), actions] - selector.values(states), atol=1e-6)
    np.testing.assert_array_equal(selector.advantages(states, [GOEMOTIONS[a] for a in actions]),
                                  selector.advantages(states, actions))


def test_the_same_seed_gives_the_same_weight_bytes_and_another_seed_does_not(trained, small_release, tmp_path):
    again = train_iql(small_release, tmp_path / "again", config=FAST, progress=False)
    assert (again / "iql.safetensors").read_bytes() == (trained / "iql.safetensors").read_bytes()
    assert curve(again) == curve(trained)
    other = train_iql(small_release, tmp_path / "other", config=replace(FAST, seed=1), progress=False)
    assert (other / "iql.safetensors").read_bytes() != (trained / "iql.safetensors").read_bytes()


@pytest.mark.parametrize("killed_at", [200, 250])  # right after a checkpoint, and between two
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(trained, small_release, tmp_path, monkeypatch,
                                                                      killed_at):
    real_losses, calls = iql.iql_losses, []

    def losses_until_killed(*args):
        calls.append(1)
        if len(calls) > killed_at:
            raise KeyboardInterrupt
        return real_losses(*args)

    monkeypatch.setattr(iql, "iql_losses", losses_until_killed)
    with pytest.raises(KeyboardInterrupt):
        train_iql(small_release, tmp_path / "run", config=FAST, progress=False)
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-00000200"]
    assert not (tmp_path / "run" / "iql.safetensors").exists()
    train_iql(small_release, tmp_path / "run", config=FAST, progress=False)
    assert (tmp_path / "run" / "iql.safetensors").read_bytes() == (trained / "iql.safetensors").read_bytes()
    assert curve(tmp_path / "run") == curve(trained)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_folder_holding_another_run_is_refused_and_a_finished_run_is_kept(trained, small_release):
    before = (trained / "iql.safetensors").read_bytes()
    assert train_iql(small_release, trained, config=FAST, progress=False) == trained
    with pytest.raises(InputError, match="holds an IQL run of a different config or release"):
        train_iql(small_release, trained, config=replace(FAST, seed=1), progress=False)
    assert (trained / "iql.safetensors").read_bytes() == before


def test_the_selector_loads_and_decides_without_torch_or_datasets(trained):
    code = ("import sys, numpy as np\nfrom baselines.iql import IQLSelector\n"
            f"s = IQLSelector.load({str(trained)!r})\nprint(s.choose_emotions(np.zeros((2, {STATE_DIM}))))\n"
            "print(sorted(m for m in ('torch', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO)
    chosen, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]" and len(eval(chosen)) == 2


def test_preferred_emotions_are_shares_of_the_policys_choices_per_persona(trained, small_release):
    shares = preferred_emotions(IQLSelector.load(trained), small_release)
    data = load_transitions(small_release, "validation")
    assert set(shares) == set(data.personas.tolist())
    for by_emotion in shares.values():
        assert set(by_emotion) <= set(GOEMOTIONS) and sum(by_emotion.values()) == pytest.approx(1, abs=1e-3)
        assert list(by_emotion.values()) == sorted(by_emotion.values(), reverse=True)


# ------------------------------------------------------------------------------ bad input

def copy_of(release: Path, folder: Path) -> Path:
    return Path(shutil.copytree(release, folder / release.name))


def test_a_folder_that_is_not_a_release_is_refused(tmp_path):
    with pytest.raises(InputError, match="is not a release folder: it has no MANIFEST.json"):
        load_transitions(tmp_path)


def test_a_release_whose_transitions_were_deleted_is_refused(small_release, tmp_path):
    release = copy_of(small_release, tmp_path)
    shutil.rmtree(release / "data" / "transitions")
    with pytest.raises(InputError, match=r"data/transitions/train-00000-of-\d+\.parquet: is missing; MANIFEST.json lists it"):
        load_transitions(release)


def test_a_release_of_another_major_version_is_refused(small_release, tmp_path):
    release = copy_of(small_release, tmp_path)
    manifest = json.loads((release / "MANIFEST.json").read_text())
    (release / "MANIFEST.json").write_text(json.dumps(manifest | {"version": "1.0.0"}))
    with pytest.raises(InputError, match="has version 1.0.0; this toolkit reads version 2.x releases .2.0 added"):
        load_transitions(release)


def test_an_unknown_domain_and_an_empty_selection_are_refused(small_release):
    with pytest.raises(InputError, match="unknown domain 'moon'"):
        load_transitions(small_release, domain="moon")
    with pytest.raises(InputError, match="has no counterparty transitions for domain 'debt'"):
        load_transitions(small_release, domain="debt", role="counterparty")
    with pytest.raises(InputError, match="unknown role 'judge'"):
        load_transitions(small_release, role="judge")
    with pytest.raises(InputError, match="no 'test' split in its transitions"):
        load_transitions(small_release, split="test")


def test_a_folder_without_a_trained_selector_is_refused(tmp_path):
    with pytest.raises(InputError, match="not a trained iql selector"):
        IQLSelector.load(tmp_path)


def test_the_train_command_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "iql", "--release", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert "no MANIFEST.json" in error and "Traceback" not in error and len(error.splitlines()) == 1


# ------------------------------------------------------------------------------ the live state

class RecordingSchedule(EmotionSchedule):
    """The corpus's uniformly random schedule, recording the state it decides in."""

    name = "random"  # the teacher is then "teacher:random", as in the release, so episode ids match

    def __init__(self):
        self.random, self.seen = UniformSchedule(), {}

    def choose_in(self, context, turn_index, rng):
        self.seen[context.task.task_id, context.turn] = state_vector(context.history, context.role,
                                                                     context.task.scenario, context.max_turns)
        return self.random.choose(turn_index, rng)


def test_the_state_at_decision_time_is_the_state_the_dataset_records(small_release, recognizer):
    from datasets import load_dataset

    train_units = [u for u in plan.units(load_config(CONFIG, "small")) if u.split == "train"]
    tasks = [task for unit in train_units for task in unit.tasks[::10]]
    schedule = RecordingSchedule()
    episodes = list(Engine(recognizer, max_turns=30).run(tasks, TeacherAgent(schedule), PersonaAgent()))
    task_of = {episode.episode_id: episode.task.task_id for episode in episodes}
    rows = load_dataset(str(small_release), "transitions", split="train").filter(
        lambda episode_id: episode_id in task_of, input_columns="episode_id")
    assert len(rows) == len(schedule.seen) > 20 and len({r["persona"] for r in rows}) > 3
    for row in rows:
        assert np.array_equal(np.asarray(row["state"], np.float32), schedule.seen[task_of[row["episode_id"]], row["turn"]])


def test_the_selector_as_a_schedule_picks_what_it_picks_from_the_datasets_state(trained, small_release, recognizer):
    selector = IQLSelector.load(trained, temperature=0)  # deterministic; the recorded fallback, if any, applies
    agent = TeacherAgent(selector)
    assert agent.name == "teacher:iql"
    tasks = load_release_tasks(small_release, "validation")[:16]
    episodes = list(Engine(recognizer, max_turns=30).run(tasks, agent, PersonaAgent()))
    decisions = [d for episode in episodes for d in episode_decisions(episode)]
    assert len(decisions) > 20
    shown = selector.extraction_probabilities(np.stack([d.state for d in decisions])).argmax(axis=1)
    assert [d.action for d in decisions] == [GOEMOTIONS[i] for i in shown]


def test_the_device_and_thread_count_are_checked_and_the_device_recorded(trained, tmp_path):
    import torch

    assert json.loads((trained / "iql.json").read_text())["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    data, _ = two_step_task([1], repeats=1)
    config = IQLConfig(steps=10, hidden=(8,), log_every=5, checkpoint_every=5)
    with pytest.raises(InputError, match="threads must be at least 1"):
        fit_iql(data, tmp_path / "a", config, progress=False, threads=0)
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        fit_iql(data, tmp_path / "b", config, progress=False, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            fit_iql(data, tmp_path / "c", config, progress=False, device="cuda")
    threads = torch.get_num_threads()
    try:
        run = fit_iql(data, tmp_path / "d", config, progress=False, device="cpu", threads=1)
        assert torch.get_num_threads() == 1 and json.loads((run / "iql.json").read_text())["device"] == "cpu"
    finally:
        torch.set_num_threads(threads)
