"""The IQL state: named, polarity-normalised features of a negotiation from one side's view.

All offers are in the speaker's own utility space (1 = own anchor, 0 = the other side's anchor), so
the same state means the same thing in every domain and for either role.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import formulas
from .domains.base import Scenario
from .emotions import EMOTION_INDEX, GOEMOTIONS
from .negotiation import Act, Role, Utterance
from .perception.offers import OfferStatus

STALL_THRESHOLD = 0.01  # an opponent move smaller than this (own space) counts toward a stalemate
SPEED_WINDOW = 2  # concession speed = mean concession over the last this-many moves

SCALAR_FEATURES: tuple[str, ...] = (
    "progress",  # messages so far / max_turns
    "own_offer",  # own standing offer (1 before the first)
    "opponent_offer",  # opponent's standing offer (0 before the first)
    "gap",  # own_offer − opponent_offer
    "own_concession_speed",  # mean own concession per move, last SPEED_WINDOW moves
    "opponent_concession_speed",  # mean opponent concession toward us per move, last SPEED_WINDOW moves
    "stalemate_count",  # consecutive latest opponent moves that conceded < STALL_THRESHOLD
)
STATE_FEATURES: tuple[str, ...] = (
    SCALAR_FEATURES
    + tuple(f"opponent_emotion={e}" for e in GOEMOTIONS)
    + tuple(f"previous_own_emotion={e}" for e in GOEMOTIONS)
)
STATE_DIM = len(STATE_FEATURES)
_READABLE = (str(OfferStatus.OK), str(OfferStatus.STRUCTURED))


@dataclass(frozen=True)
class OfferTrack:
    """One role's readable offers over a transcript, in that role's own space, each with the index of
    the message that made it; the first entry is the role's own anchor (1.0) at index −1."""

    turns: tuple[int, ...]
    positions: tuple[float, ...]

    def upto(self, k: int) -> tuple[float, ...]:
        """Positions stated in the first ``k`` messages (anchor included)."""
        return self.positions[: bisect_left(self.turns, k)]

    def standing(self, k: int) -> float:
        """The standing position after the first ``k`` messages."""
        return self.positions[bisect_left(self.turns, k) - 1]


def offer_track(history: Sequence[Utterance], role: Role, scenario: Scenario) -> OfferTrack:
    focal = role is Role.FOCAL
    turns, positions = [-1], [1.0]
    for utterance in history:
        if utterance.role is role and utterance.offer is not None and (
                utterance.offer_status in _READABLE or utterance.act is Act.ACCEPT):
            turns.append(utterance.turn)
            positions.append(formulas.own_position(utterance.offer, scenario.focal_anchor,
                                                   scenario.counterparty_anchor, focal))
    return OfferTrack(tuple(turns), tuple(positions))


def state_vector(history: Sequence[Utterance], role: Role, scenario: Scenario, max_turns: int,
                 tracks: tuple[OfferTrack, OfferTrack] | None = None) -> np.ndarray:
    """The state ``role`` decides in, given the messages so far (float32, ``STATE_DIM`` long).

    ``tracks`` (own, opponent) may be precomputed over a longer transcript to avoid rescanning it.
    """
    k = len(history)
    own_track, opponent_track = tracks or (offer_track(history, role, scenario),
                                           offer_track(history, role.other, scenario))
    own = own_track.upto(k)
    # The opponent's offers seen from our side: 1 − (their own position).
    opponent = [1.0 - x for x in opponent_track.upto(k)]
    own_steps = [a - b for a, b in zip(own, own[1:])]
    opponent_steps = [b - a for a, b in zip(opponent, opponent[1:])]
    stalemate = 0
    for step in reversed(opponent_steps):
        if step >= STALL_THRESHOLD:
            break
        stalemate += 1

    vector = np.zeros(STATE_DIM, dtype=np.float32)
    vector[:7] = (
        k / max_turns,
        own[-1],
        opponent[-1],
        own[-1] - opponent[-1],
        _mean_tail(own_steps),
        _mean_tail(opponent_steps),
        stalemate,
    )
    heard = next((u for u in reversed(history) if u.role is not role), None)
    said = next((u for u in reversed(history) if u.role is role), None)
    if heard is not None:
        vector[7 + EMOTION_INDEX[heard.perceived_emotion]] = 1.0
    if said is not None and said.declared_emotion is not None:
        vector[7 + len(GOEMOTIONS) + EMOTION_INDEX[said.declared_emotion]] = 1.0
    return vector


def _mean_tail(steps: list[float]) -> float:
    tail = steps[-SPEED_WINDOW:]
    return sum(tail) / len(tail) if tail else 0.0
