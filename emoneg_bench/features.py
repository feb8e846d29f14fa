"""The IQL state: named, polarity-normalised features of a negotiation from one side's view.

All offers are in the speaker's own utility space (1 = own anchor, 0 = the other side's anchor), so
the same state means the same thing in every domain and for either role.

Beyond offers and the last emotions, the state carries the **emotion history** a counterparty reacts
to, so that it is Markov for the documented persona model (``docs/counterparty.md``): a persona's
concessions and walk-away hazard depend on how many dominant or pleading messages it has *perceived*
so far (an inverted U with a tolerance, decaying pleas), and its own displayed emotion reveals how it
took each family (nervous or annoyed under dominance, caring or cold under pleas). Per emotion family,
the state counts one's own messages as the other side perceived them, says how recently that family
was used, and records the other side's concession and displayed family in its reply to one's latest
message of that family. Nothing in it names the counterparty: a selector must infer who it faces from
how it responds.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from . import formulas
from .domains.base import Scenario
from .emotions import EMOTION_INDEX, FAMILY_OF, GOEMOTIONS, Family
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
FAMILIES: tuple[str, ...] = tuple(str(f) for f in Family)
RECENCY_DECAY = 0.5  # own_family_recency = RECENCY_DECAY ** (own messages since the latest one of the family)
EMOTION_HISTORY_FEATURES: tuple[str, ...] = (
    tuple(f"own_family_count={f}" for f in FAMILIES)  # own messages so far perceived in the family
    + tuple(f"own_family_recency={f}" for f in FAMILIES)  # 1 = the latest own message; 0 = never used
    + ("own_family_streak",)  # consecutive latest own messages perceived in the same family
    # the opponent's concession toward us in its reply to our latest message of the family (0 if none)
    + tuple(f"response_concession_after={f}" for f in FAMILIES)
    # the family the opponent displayed (as perceived) in that reply, one-hot per our family
    + tuple(f"response_family_after={f}={g}" for f in FAMILIES for g in FAMILIES)
)
STATE_FEATURES: tuple[str, ...] = (
    SCALAR_FEATURES
    + tuple(f"opponent_emotion={e}" for e in GOEMOTIONS)
    + tuple(f"previous_own_emotion={e}" for e in GOEMOTIONS)
    + EMOTION_HISTORY_FEATURES
)
STATE_DIM = len(STATE_FEATURES)
_INDEX = {name: i for i, name in enumerate(STATE_FEATURES)}
_FAMILY_INDEX = {f: i for i, f in enumerate(FAMILIES)}
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
    _emotion_history(history, role, opponent_track, vector)
    return vector


def _emotion_history(history: Sequence[Utterance], role: Role, opponent_track: OfferTrack,
                     vector: np.ndarray) -> None:
    """Fill the ``EMOTION_HISTORY_FEATURES`` of ``vector`` from ``role``'s messages and the replies to them."""
    k = len(history)
    counts = [0] * len(FAMILIES)
    last_use: dict[int, int] = {}  # family → index (in own messages) of its latest use
    responses: dict[int, tuple[float, int | None]] = {}  # family → (concession, displayed family) of the reply
    own_families: list[int] = []
    for i, utterance in enumerate(history):
        if utterance.role is not role:
            continue
        family = _FAMILY_INDEX[str(FAMILY_OF[utterance.perceived_emotion])]
        counts[family] += 1
        last_use[family] = len(own_families)
        own_families.append(family)
        if i + 1 < k and history[i + 1].role is not role:
            reply = history[i + 1]
            # the opponent's standing offer in its own space, before and after its reply
            concession = opponent_track.standing(i + 1) - opponent_track.standing(i + 2)
            responses[family] = (concession, _FAMILY_INDEX[str(FAMILY_OF[reply.perceived_emotion])])
        else:
            responses.pop(family, None)  # our latest message of this family has no reply yet
    if not own_families:
        return
    for family, f in enumerate(FAMILIES):
        vector[_INDEX[f"own_family_count={f}"]] = counts[family]
        if family in last_use:
            vector[_INDEX[f"own_family_recency={f}"]] = RECENCY_DECAY ** (len(own_families) - 1 - last_use[family])
        if family in responses:
            concession, shown = responses[family]
            vector[_INDEX[f"response_concession_after={f}"]] = concession
            vector[_INDEX[f"response_family_after={f}={FAMILIES[shown]}"]] = 1.0
    streak = 0
    for family in reversed(own_families):
        if family != own_families[-1]:
            break
        streak += 1
    vector[_INDEX["own_family_streak"]] = streak


def _mean_tail(steps: list[float]) -> float:
    tail = steps[-SPEED_WINDOW:]
    return sum(tail) / len(tail) if tail else 0.0
