import numpy as np
import pytest

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.teacher import TeacherAgent
from emoneg_bench.domains import domain_ids, generate_scenarios
from emoneg_bench.engine import Agent
from emoneg_bench.features import STATE_DIM, STATE_FEATURES, state_vector
from emoneg_bench.judge import RubricJudge
from emoneg_bench.negotiation import Act, Ending, Move, Role, Task
from emoneg_bench.rewards import episode_decisions


class Script(Agent):
    """Says its moves in order, then repeats the last one."""

    def __init__(self, moves):
        self.moves, self.name = moves, "script"

    def start(self, *args):
        return {"next": 0}

    def act(self, turns):
        moves = []
        for t in turns:
            moves.append(self.moves[min(t.state["next"], len(self.moves) - 1)])
            t.state["next"] += 1
        return moves


def debt_task():
    # a = 10 days, b = 110 days: one day is 0.01 of the focal-utility range
    scenario = generate_scenarios("debt", 1, seed=0)[0]
    from dataclasses import replace

    return Task(replace(scenario, focal_anchor=10, counterparty_anchor=110), "script", 0)


def test_a_firm_message_that_moves_the_other_side_scores_high(engine):
    focal = Script([Move("I need 20 days.", offer=20), Move("Still 21 days.", offer=21)])
    other = Script([Move("I can do 80 days.", offer=80), Move("Fine, 50 days.", offer=50)])
    episode = engine.play(debt_task(), focal, other)
    scores = RubricJudge().score_episode(episode)
    # first message: own concession 0.1, reply 110 → 80 days = 0.3: 5 + 30·0.3 − 20·(0.1 − 0.05) = 13 → 10
    assert scores[0].score == 10 and scores[0].turn == 0
    assert scores[0].reason.startswith("own concession +0.100")
    # second message: own concession 0.01 (firm), reply 80 → 50 days = 0.3: 5 + 9 + 1 → 10
    assert scores[1].score == 10


def test_a_large_own_concession_scores_low(engine):
    focal = Script([Move("100 days then.", offer=100)])
    other = Script([Move("I can do 108 days.", offer=108)])
    scores = RubricJudge().score_episode(engine.play(debt_task(), focal, other))
    assert scores[0].score == 1  # 5 + 30·0.02 − 20·(0.9 − 0.05) → clipped to 1


def test_unreadable_and_walkaway_triggering_messages_are_penalised(engine):
    focal = Script([Move("Let us talk."), Move("I need 20 days.", offer=20)])
    other = Script([Move("I can do 80 days.", offer=80), Move("I'm leaving.", Act.WALKAWAY)])
    episode = engine.play(debt_task(), focal, other)
    scores = RubricJudge().score_episode(episode)
    assert [s.score for s in scores] == [2, 1]
    assert episode.outcome.ending is Ending.WALKAWAY


def test_an_empty_message_is_missing_not_a_silent_five(engine):
    focal = Script([Move("", offer=20)])
    other = Script([Move("Deal.", Act.ACCEPT)])
    scores = RubricJudge().score_episode(engine.play(debt_task(), focal, other))
    assert scores[0].score is None and "empty" in scores[0].reason


@pytest.mark.parametrize("domain", domain_ids())
def test_judge_scores_every_focal_message_in_every_domain(engine, domain):
    tasks = [Task(s, "conceder", i) for i, s in enumerate(generate_scenarios(domain, 20, seed=0))]
    for episode in engine.run(tasks, TeacherAgent("random"), PersonaAgent("conceder")):
        scores = RubricJudge().score_episode(episode)
        assert [s.turn for s in scores] == [u.turn for u in episode.turns_of(Role.FOCAL)]
        assert all(s.score is not None and 1 <= s.score <= 10 for s in scores)


def test_state_features_are_named_and_polarity_normalised(engine):
    focal = Script([Move("20 days.", offer=20, declared_emotion="anger"), Move("25 days.", offer=25)])
    other = Script([Move("80 days.", offer=80), Move("80 days.", offer=80)])
    episode = engine.play(debt_task(), focal, other)
    state = dict(zip(STATE_FEATURES, state_vector(episode.utterances[:2], Role.FOCAL, episode.task.scenario, 30)))
    assert len(STATE_FEATURES) == STATE_DIM == 7 + 28 + 28 + 6 + 6 + 1 + 6 + 36
    assert state["progress"] == pytest.approx(2 / 30)
    assert state["own_offer"] == pytest.approx(0.9) and state["opponent_offer"] == pytest.approx(0.3)
    assert state["gap"] == pytest.approx(0.6)
    assert state["own_concession_speed"] == pytest.approx(0.1)
    assert state["opponent_concession_speed"] == pytest.approx(0.3)
    assert state["previous_own_emotion=anger"] == 1.0
    assert sum(v for k, v in state.items() if k.startswith("previous_own_emotion=")) == 1.0
    # the emotion history: one own message, perceived as anger (a dominant family), with its reply seen
    family = next(k.split("=", 1)[1] for k, v in state.items() if k.startswith("own_family_count=") and v == 1.0)
    assert sum(v for k, v in state.items() if k.startswith("own_family_count=")) == 1.0
    assert state[f"own_family_recency={family}"] == 1.0 and state["own_family_streak"] == 1.0
    # its opening (80) counts from its own anchor, as opponent_concession_speed does
    assert state[f"response_concession_after={family}"] == pytest.approx(0.3)
    assert sum(v for k, v in state.items() if k.startswith(f"response_family_after={family}=")) == 1.0
    assert state[f"opponent_emotion={episode.utterances[1].perceived_emotion}"] == 1.0
    later = dict(zip(STATE_FEATURES, state_vector(episode.utterances[:4], Role.FOCAL, episode.task.scenario, 30)))
    assert later["stalemate_count"] == 1


def test_the_counterparty_sees_the_mirror_image(engine):
    focal = Script([Move("20 days.", offer=20)])
    other = Script([Move("80 days.", offer=80)])
    episode = engine.play(debt_task(), focal, other)
    state = dict(zip(STATE_FEATURES, state_vector(episode.utterances[:2], Role.COUNTERPARTY, episode.task.scenario, 30)))
    assert state["own_offer"] == pytest.approx(0.7) and state["opponent_offer"] == pytest.approx(0.1)


def test_rewards_are_net_concessions_plus_a_terminal_bonus(engine):
    focal = Script([Move("20 days.", offer=20), Move("Deal at 40 days.", Act.ACCEPT)])
    other = Script([Move("40 days.", offer=40)])
    episode = engine.play(debt_task(), focal, other)
    first, second = episode_decisions(episode)
    assert first.own_concession == pytest.approx(0.1) and first.opponent_concession == pytest.approx(0.7)
    assert first.reward == pytest.approx(1.0 * (0.7 - 0.1))
    assert not first.terminated
    # accepting 40 days: own concession 0.9 → 0.7, weight 1 − 0.5·2/30, plus the agreement bonus of U = 0.7
    assert second.reward == pytest.approx((1 - 0.5 * 2 / 30) * -0.2 + 0.7)
    assert second.terminated and not second.truncated
    assert np.array_equal(first.next_state, second.state)


def test_truncation_is_flagged_on_the_last_decision_only(recognizer):
    from emoneg_bench.engine import Engine

    episode = Engine(recognizer, max_turns=4).play(debt_task(), TeacherAgent("fixed-neutral"), PersonaAgent("shark"))
    decisions = episode_decisions(episode)
    assert [d.truncated for d in decisions] == [False, True]
    assert not any(d.terminated for d in decisions)
