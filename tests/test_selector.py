"""Emotion selection that learns (issue 12): a state that is Markov for what a counterparty reacts to, policy
extraction at a temperature chosen on validation, the best-fixed and bc-top comparators, and the headroom
table."""

import json
import random

import numpy as np
import pytest

from baselines.bc import BCConfig, top_episodes, train_bc
from baselines.comparators import CHOICES, choose_best_fixed, load_choices, schedule
from baselines.iql import IQLConfig, Transitions, fit_iql
from baselines.policies import Runs, make_policy
from baselines.selector import BCSelector, IQLSelector, sample_index, softmax
from emoneg_bench.domains import generate_scenarios
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.errors import InputError
from emoneg_bench.features import EMOTION_HISTORY_FEATURES, STATE_DIM, STATE_FEATURES, state_vector
from emoneg_bench.negotiation import Act, Role, Utterance

SCENARIO = generate_scenarios("debt", 1)[0]
DECISIONS = 6  # focal decisions per synthetic episode
MAX_TURNS = 2 * DECISIONS
PUNISHED = -3.0  # reward of the third consecutive angry message, which also ends the episode
OLD_STATE = [i for i, name in enumerate(STATE_FEATURES) if name not in EMOTION_HISTORY_FEATURES]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ a counterparty that punishes the third anger

def message(turn: int, role: Role, emotion: str) -> Utterance:
    """A message that restates its side's anchor (offers never move, so no offer feature can carry history)."""
    offer = SCENARIO.focal_anchor if role is Role.FOCAL else SCENARIO.counterparty_anchor
    return Utterance(turn, role, "…", Act.OFFER, offer, "structured", emotion if role is Role.FOCAL else None,
                     emotion, 1.0)


def history_of(emotions: list[str]) -> list[Utterance]:
    """Our messages with these emotions, each answered by a neutral counterparty."""
    history = []
    for emotion in emotions:
        history.append(message(len(history), Role.FOCAL, emotion))
        history.append(message(len(history), Role.COUNTERPARTY, "neutral"))
    return history


def angry_streak(emotions: list[str]) -> int:
    streak = 0
    for emotion in reversed(emotions):
        if emotion != "anger":
            break
        streak += 1
    return streak


def step(emotions: list[str], emotion: str) -> tuple[float, bool]:
    """The counterparty's answer as a reward: the first angry message earns 1, a second in a row 2, a third in a
    row ends the negotiation badly; any other emotion earns nothing (and resets the streak). The best play is
    therefore anger, anger, something else, and again (6 over six decisions)."""
    if emotion != "anger":
        return 0.0, False
    streak = angry_streak(emotions)
    return (PUNISHED, True) if streak >= 2 else (1.0 + streak, False)


def state(emotions: list[str], columns=None) -> np.ndarray:
    vector = state_vector(history_of(emotions), Role.FOCAL, SCENARIO, MAX_TURNS)
    return vector if columns is None else vector[columns]


def behaviour_data(episodes: int, columns, seed: int = 0) -> Transitions:
    """Uniformly random anger/neutral behaviour, with the state restricted to ``columns``; the restricted
    state is zero-padded to the full width so the same trainer and selector read it."""
    rng = random.Random(seed)
    rows = {"states": [], "actions": [], "rewards": [], "next_states": [], "terminated": []}
    for _ in range(episodes):
        emotions: list[str] = []
        for decision in range(DECISIONS):
            emotion = rng.choice(("anger", "neutral"))
            reward, ended = step(emotions, emotion)
            ended = ended or decision == DECISIONS - 1  # the game has this many decisions
            before = state(emotions, columns)
            emotions.append(emotion)
            rows["states"].append(before)
            rows["actions"].append(GOEMOTIONS.index(emotion))
            rows["rewards"].append(reward)
            rows["next_states"].append(state(emotions, columns))
            rows["terminated"].append(ended)
            if ended:
                break
    pad = np.zeros((len(rows["states"]), STATE_DIM), np.float32)
    states, next_states = pad.copy(), pad.copy()
    states[:, : len(rows["states"][0])] = rows["states"]
    next_states[:, : len(rows["states"][0])] = rows["next_states"]
    n = len(rows["actions"])
    return Transitions(states=states, actions=np.array(rows["actions"], np.int64),
                       rewards=np.array(rows["rewards"], np.float32), next_states=next_states,
                       terminated=np.array(rows["terminated"]), personas=np.array(["synthetic"] * n),
                       release={"release": "third-anger", "episodes": episodes, "seed": seed})


def greedy_return(selector: IQLSelector, columns) -> tuple[float, list[str]]:
    """Play the selector's argmax against the synthetic counterparty; its total reward and emotions."""
    emotions: list[str] = []
    total = 0.0
    for _ in range(DECISIONS):
        padded = np.zeros(STATE_DIM, np.float32)
        observed = state(emotions, columns)
        padded[: len(observed)] = observed
        emotion = selector.choose_emotions(padded)[0]
        reward, ended = step(emotions, emotion)
        total += reward
        emotions.append(emotion)
        if ended:
            break
    return total, emotions


SYNTHETIC = IQLConfig(steps=3000, hidden=(64, 64), batch_size=256, beta=10.0, expectile=0.9, discount=0.9, tau=0.02,
                      critic_lr=1e-3, value_lr=1e-3, policy_lr=1e-3, log_every=100, checkpoint_every=3000)


def test_the_old_state_cannot_tell_two_angry_messages_from_one():
    # after (anger, anger) a third anger is punished; after (neutral, anger) anger still pays
    assert np.array_equal(state(["anger", "anger"], OLD_STATE), state(["neutral", "anger"], OLD_STATE))
    assert not np.array_equal(state(["anger", "anger"]), state(["neutral", "anger"]))


def test_the_emotion_history_lets_iql_learn_two_angry_messages_then_stop(tmp_path):
    full = list(range(STATE_DIM))
    new = IQLSelector.load(fit_iql(behaviour_data(1500, full), tmp_path / "new", SYNTHETIC, progress=False))
    total, emotions = greedy_return(new, full)
    assert emotions == ["anger", "anger", "neutral", "anger", "anger", "neutral"]
    assert total == 6.0

    old = IQLSelector.load(fit_iql(behaviour_data(1500, OLD_STATE), tmp_path / "old", SYNTHETIC, progress=False))
    old_total, old_emotions = greedy_return(old, OLD_STATE)
    assert old_total < total, old_emotions


# ------------------------------------------------------------------------------------------ extraction

def test_extraction_at_temperature_zero_is_the_argmax_and_sampling_follows_the_softmax(tmp_path):
    data = behaviour_data(200, list(range(STATE_DIM)))
    run = fit_iql(data, tmp_path, IQLConfig(steps=200, hidden=(16, 16), log_every=100, checkpoint_every=200),
                  progress=False)
    states = data.states[:50]
    greedy = IQLSelector.load(run, temperature=0)
    assert np.array_equal(greedy.probabilities(states).argmax(axis=1), greedy.policy_logits(states).argmax(axis=1))
    assert (greedy.probabilities(states).max(axis=1) == 1).all()
    assert greedy.choose_emotions(states) == [GOEMOTIONS[i] for i in greedy.policy_logits(states).argmax(axis=1)]

    probabilities = softmax(np.log([[0.7, 0.2, 0.1]]), 1.0)[0]
    rng = random.Random(0)
    draws = np.bincount([sample_index(probabilities, rng) for _ in range(20000)], minlength=3) / 20000
    np.testing.assert_allclose(draws, [0.7, 0.2, 0.1], atol=0.015)
    assert np.allclose(softmax(np.array([[1.0, 2.0]]), 1e-6), [[0.0, 1.0]])


def test_a_run_records_its_extraction_temperature_and_a_bad_one_is_refused(tmp_path):
    run = fit_iql(behaviour_data(50, list(range(STATE_DIM))), tmp_path,
                  IQLConfig(steps=100, hidden=(8,), log_every=50, checkpoint_every=100), progress=False)
    assert IQLSelector.load(run).temperature == 1.0  # nothing chosen yet: sample from the policy as trained
    metadata = json.loads((run / "iql.json").read_text())
    metadata["extraction"] = {"temperature": 0.25, "chosen_on": "validation"}
    (run / "iql.json").write_text(json.dumps(metadata))
    assert IQLSelector.load(run).temperature == 0.25
    assert IQLSelector.load(run, temperature=0).temperature == 0
    with pytest.raises(InputError, match="temperature must be a number >= 0"):
        IQLSelector.load(run, temperature=-1)


def test_the_fallback_shows_the_pick_only_where_the_critic_rates_it_above_the_baseline(tmp_path):
    data = behaviour_data(300, list(range(STATE_DIM)))
    run = fit_iql(data, tmp_path, IQLConfig(steps=300, hidden=(16, 16), log_every=100, checkpoint_every=300),
                  progress=False)
    states = data.states[:300]
    plain = IQLSelector.load(run, temperature=0, fallback=None)
    q, pick = plain.q_values(states), plain.policy_logits(states).argmax(axis=1)
    baseline = GOEMOTIONS.index("anger")
    gain = q[np.arange(len(q)), pick] - q[:, baseline]
    distinct = np.unique(gain)
    assert len(distinct) >= 2
    middle = float(distinct[0] + distinct[-1]) / 2  # some picks are kept and some fall back
    for margin in (0.0, middle):
        fallback = {"emotion": "anger", "margin": margin}
        shown = IQLSelector.load(run, 0, fallback).extraction_probabilities(states).argmax(axis=1)
        expected = np.where(gain > margin, pick, baseline)
        assert np.array_equal(shown, expected)
    assert 0 < (gain > middle).sum() < len(states)
    always = IQLSelector.load(run, 0, {"emotion": "anger", "margin": 1e9}).extraction_probabilities(states)
    assert (always.argmax(axis=1) == baseline).all()
    never = IQLSelector.load(run, 0, {"emotion": "anger", "margin": -1e9}).extraction_probabilities(states)
    assert np.array_equal(never.argmax(axis=1), pick)
    sampled = IQLSelector.load(run, 1.0, {"emotion": "anger", "margin": 0.0})
    shown = sampled.extraction_probabilities(states)
    np.testing.assert_allclose(shown.sum(axis=1), 1.0, rtol=1e-6)
    falls = (gain <= 0) & (pick != baseline)
    assert falls.any() and (shown[falls, pick[falls]] == 0).all()  # a pick the critic does not rate above: never shown
    assert sampled.extraction_tag == "1+anger>0" and plain.extraction_tag == "0"


@pytest.mark.parametrize("fallback", [{"emotion": "rage", "margin": 0.0}, {"emotion": "anger", "margin": "x"},
                                      {"emotion": "anger", "margin": float("nan")}, ["anger", 0.0]])
def test_a_bad_fallback_is_refused(tmp_path, fallback):
    run = fit_iql(behaviour_data(30, list(range(STATE_DIM))), tmp_path,
                  IQLConfig(steps=20, hidden=(8,), log_every=10, checkpoint_every=20), progress=False)
    with pytest.raises(InputError, match="expected {emotion"):
        IQLSelector.load(run, 0, fallback)


def test_iql_chooses_temperature_and_fallback_on_validation_and_plays_what_it_recorded(small_release, tmp_path,
                                                                                      engine):
    from baselines.comparators import choose_best_fixed
    from baselines.iql import FALLBACK_MARGINS, train_iql
    from baselines.validation import TEMPERATURES, ValidationSet
    from emoneg_bench.agents.personas import PersonaAgent
    from emoneg_bench.agents.teacher import TeacherAgent

    run = train_iql(small_release, tmp_path / "iql", config=IQLConfig(steps=200, hidden=(16, 16), log_every=100,
                                                                      checkpoint_every=200), progress=False)
    extraction = json.loads((run / "iql.json").read_text())["extraction"]
    scores = extraction["validation_utility"]
    assert len(scores) == len(TEMPERATURES) * (1 + len(FALLBACK_MARGINS))
    assert scores[extraction["chosen"]] == max(scores.values())
    best_fixed = load_choices(choose_best_fixed(small_release, tmp_path / "bf", progress=False))["best_fixed"]
    assert extraction["best_fixed_on_validation"]["emotion"] == best_fixed
    # what evaluation plays is what was recorded: re-derive every shown emotion from the state
    selector = IQLSelector.load(run, temperature=0, fallback={"emotion": best_fixed, "margin": 0.0})
    tasks = ValidationSet.of(small_release).tasks[:6]
    episodes = list(engine.run(tasks, TeacherAgent(selector), PersonaAgent()))
    checked = 0
    for episode in episodes:
        for u in episode.turns_of(Role.FOCAL):
            state = state_vector(episode.utterances[: u.turn], Role.FOCAL, episode.task.scenario, engine.max_turns)
            assert u.declared_emotion == GOEMOTIONS[selector.extraction_probabilities(state)[0].argmax()]
            checked += 1
    assert checked >= 6


# ------------------------------------------------------------------------------------------ comparators

def test_best_fixed_is_chosen_on_validation_and_reproduces_byte_for_byte(small_release, tmp_path, recognizer):
    first = choose_best_fixed(small_release, tmp_path / "a", progress=False)
    again = choose_best_fixed(small_release, tmp_path / "b", progress=False)
    assert (first / CHOICES).read_bytes() == (again / CHOICES).read_bytes()
    record = load_choices(first)
    overall = record["validation_utility"]["overall"]
    assert set(overall) == set(GOEMOTIONS)
    assert overall[record["best_fixed"]] == max(overall.values())
    for domain, emotion in record["best_fixed_domain"].items():
        scores = record["validation_utility"]["by_domain"][domain]
        assert scores[emotion] == max(scores.values())
    # the reference knows every persona, held-out ones included (chosen on validation scenarios)
    from emoneg_bench.agents.personas import persona_names

    assert set(record["persona_best_fixed"]) == set(persona_names())
    assert schedule(record, "best-fixed").emotion == record["best_fixed"]


def test_bc_top_keeps_the_best_episodes_and_reproduces_byte_for_byte(small_release, tmp_path):
    utilities = {"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.9}
    assert top_episodes(utilities, 0.5) == {"b", "d"}
    assert top_episodes(utilities, 0.01) == {"b"}  # at least one; ties go to the smaller id
    config = BCConfig(top_fraction=0.25, steps=60, hidden=(16, 16), batch_size=32)
    first = train_bc(small_release, tmp_path / "a", config=config, progress=False, temperature=0.5)
    again = train_bc(small_release, tmp_path / "b", config=config, progress=False, temperature=0.5)
    assert (first / "bc.safetensors").read_bytes() == (again / "bc.safetensors").read_bytes()
    selector = BCSelector.load(first)
    assert selector.temperature == 0.5
    metadata = json.loads((first / "bc.json").read_text())
    assert metadata["config"]["top_fraction"] == 0.25 and metadata["transitions"] > 0
    other = train_bc(small_release, tmp_path / "c", config=BCConfig(top_fraction=0.25, steps=60, hidden=(16, 16),
                                                                     batch_size=32, seed=1),
                     progress=False, temperature=0.5)
    assert (other / "bc.safetensors").read_bytes() != (first / "bc.safetensors").read_bytes()


def test_comparators_play_with_the_phrasing_bank(small_release, tmp_path):
    from baselines.evaluate import EvalRequest, evaluate

    runs = Runs(best_fixed=choose_best_fixed(small_release, tmp_path / "best-fixed", progress=False))
    record = load_choices(runs.best_fixed)
    out = tmp_path / "best.parquet"
    evaluate(EvalRequest("best-fixed-teacher", small_release, limit=2), out, runs, progress=False)
    import pyarrow.parquet as pq

    turns = pq.read_table(out).to_pylist()
    declared = {t["declared_emotion_name"] for row in turns for t in row["turns"] if t["role"] == "focal"}
    assert declared == {record["best_fixed"]}
    with pytest.raises(InputError, match="needs a trained best-fixed run"):
        make_policy("best-fixed-teacher", Runs())


def test_reward_check_ranks_episodes_by_each_rewards_return(small_release):
    from baselines.tune import _spearman, reward_check

    assert _spearman(np.array([1.0, 2.0, 2.0, 3.0]), np.array([10.0, 30.0, 30.0, 40.0])) == pytest.approx(1.0)
    assert _spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    check = reward_check(small_release, split="train")
    assert check["episodes"] > 0 and set(check["spearman_vs_utility"]) == {"shaped", "utility"}
    # the utility reward is the metric itself, up to discounting: it must rank episodes almost exactly alike
    assert check["spearman_vs_utility"]["utility"] > 0.95
    assert -1.0 <= check["spearman_vs_utility"]["shaped"] <= 1.0
