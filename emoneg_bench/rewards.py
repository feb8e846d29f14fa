"""Offline-RL decisions of one side of an episode: (state, emotion, reward, next state, flags).

Reward of a decision = ``formulas.step_reward`` of the speaker's own concession in that message and the
opponent's concession in its reply, plus ``formulas.terminal_reward`` when the episode ends at that
message or the reply. Each decision also carries ``utility_reward``, the same with
``formulas.UTILITY_REWARDS``: the agreement's own utility at the end and 0 everywhere else, i.e. the
evaluation metric itself (a trainer chooses between the two on validation). Termination (agreement, walk-away, breakdown) and truncation (turn limit) are
kept apart as in D4RL/Minari.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import formulas
from .features import offer_track, state_vector
from .negotiation import Ending, Episode, Role


@dataclass(frozen=True)
class Decision:
    turn: int
    state: np.ndarray
    action: str | None  # the declared emotion; None for an emotion-free agent
    own_concession: float
    opponent_concession: float
    reward: float
    utility_reward: float
    next_state: np.ndarray
    terminated: bool
    truncated: bool


def own_utility(episode: Episode, role: Role) -> float:
    """The outcome's utility for ``role`` (focal utility, or 1 − position for the counterparty)."""
    if episode.outcome.agreed_value is None:
        return 0.0
    if role is Role.FOCAL:
        return episode.outcome.utility
    scenario = episode.task.scenario
    u = formulas.own_position(episode.outcome.agreed_value, scenario.focal_anchor, scenario.counterparty_anchor,
                              focal=False)
    return min(1.0, max(0.0, u))


def episode_decisions(episode: Episode, role: Role = Role.FOCAL,
                      config: formulas.RewardConfig = formulas.DEFAULT_REWARDS) -> list[Decision]:
    scenario, history = episode.task.scenario, episode.utterances
    ended = episode.outcome.ending not in (Ending.TURN_LIMIT, Ending.ERROR)
    own, opponent = offer_track(history, role, scenario), offer_track(history, role.other, scenario)
    own_turns = [u.turn for u in history if u.role is role]
    states = [state_vector(history[:turn], role, scenario, episode.max_turns, (own, opponent)) for turn in own_turns]
    states.append(state_vector(history, role, scenario, episode.max_turns, (own, opponent)))
    decisions = []
    for index, turn in enumerate(own_turns):
        reply_end = min(turn + 2, len(history))
        own_concession = own.standing(turn) - own.standing(turn + 1)
        # the opponent's standing offer seen from our side is 1 − its own position
        opponent_concession = opponent.standing(turn + 1) - opponent.standing(reply_end)
        reward = formulas.step_reward(own_concession, opponent_concession, turn / episode.max_turns, config)
        utility_reward = 0.0
        is_last = index == len(own_turns) - 1
        terminated = ended and is_last and len(history) - 1 <= turn + 1
        if terminated:
            utility = own_utility(episode, role)
            reward += formulas.terminal_reward(episode.outcome.ending, utility, config)
            utility_reward = formulas.terminal_reward(episode.outcome.ending, utility, formulas.UTILITY_REWARDS)
        decisions.append(Decision(
            turn=turn,
            state=states[index],
            action=history[turn].declared_emotion,
            own_concession=own_concession,
            opponent_concession=opponent_concession,
            reward=reward,
            utility_reward=utility_reward,
            next_state=states[index + 1],
            terminated=terminated,
            truncated=is_last and not ended,
        ))
    return decisions
