"""Offline-RL decisions of one side of an episode: (state, emotion, reward, next state, flags).

Reward of a decision = ``formulas.step_reward`` of the speaker's own concession in that message and the
opponent's concession in its reply, plus ``formulas.terminal_reward`` when the episode ends at that
message or the reply. Termination (agreement, walk-away, breakdown) and truncation (turn limit) are
kept apart as in D4RL/Minari.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import formulas
from .features import offer_trajectory, state_vector
from .negotiation import Ending, Episode, Role


@dataclass(frozen=True)
class Decision:
    turn: int
    state: np.ndarray
    action: str | None  # the declared emotion; None for an emotion-free agent
    own_concession: float
    opponent_concession: float
    reward: float
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
    last_turn = len(history) - 1
    ended = episode.outcome.ending is not Ending.TURN_LIMIT
    decisions = []
    own_turns = [u.turn for u in history if u.role is role]
    for index, turn in enumerate(own_turns):
        own_before = offer_trajectory(history[:turn], role, scenario)[-1]
        own_after = offer_trajectory(history[: turn + 1], role, scenario)[-1]
        reply_end = min(turn + 2, len(history))
        opponent_before = 1.0 - offer_trajectory(history[: turn + 1], role.other, scenario)[-1]
        opponent_after = 1.0 - offer_trajectory(history[:reply_end], role.other, scenario)[-1]
        own_concession, opponent_concession = own_before - own_after, opponent_after - opponent_before
        reward = formulas.step_reward(own_concession, opponent_concession, turn / episode.max_turns, config)
        is_last = index == len(own_turns) - 1
        terminated = ended and is_last and last_turn <= turn + 1
        if terminated:
            reward += formulas.terminal_reward(episode.outcome.ending, own_utility(episode, role), config)
        next_turn = own_turns[index + 1] if not is_last else len(history)
        decisions.append(Decision(
            turn=turn,
            state=state_vector(history[:turn], role, scenario, episode.max_turns),
            action=history[turn].declared_emotion,
            own_concession=own_concession,
            opponent_concession=opponent_concession,
            reward=reward,
            next_state=state_vector(history[:next_turn], role, scenario, episode.max_turns),
            terminated=terminated,
            truncated=is_last and not ended,
        ))
    return decisions
