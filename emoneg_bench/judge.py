"""Judges score each message of one side 1–10 (the JPO signal). The built-in rubric judge needs no
model; a judge that cannot score a message returns a missing score with the reason, never a silent 5.
"""

from __future__ import annotations

from dataclasses import dataclass

from .features import offer_track
from .negotiation import Act, Episode, Role
from .perception.offers import OfferStatus

RUBRIC = (
    "Score the {role}'s message from 1 to 10 for negotiating skill in a {issue} negotiation ({unit}). "
    "Reward calibrated firmness that moves the other side: small own concessions, a clear, readable offer, "
    "and a reply in which the other side concedes. Penalise large own concessions, unreadable or "
    "out-of-range offers, and messages after which the other side walks away."
)


@dataclass(frozen=True)
class JudgeScore:
    turn: int
    score: int | None  # None when the judge could not score the message
    reason: str


@dataclass(frozen=True)
class RubricJudge:
    """Deterministic rubric, in the speaker's own (polarity-normalised) space so it is the same in every
    domain:

    ``score = clip(round(5 + 30·opponent_concession − 20·max(0, own_concession − 0.05)
    + firmness_bonus), 1, 10)``, where ``firmness_bonus`` is 1 when the speaker conceded at most 0.05
    and the reply moved toward it. Special cases: an unreadable offer scores 2, an out-of-range one 1,
    a message followed by a walk-away 1, a message that quits 1, an acceptance ``1 + 9·(own position of
    the accepted value)``, an empty message is missing.
    """

    name: str = "rubric"
    firmness_margin: float = 0.05

    def score_episode(self, episode: Episode, role: Role = Role.FOCAL) -> list[JudgeScore]:
        scenario, history = episode.task.scenario, episode.utterances
        own, other = offer_track(history, role, scenario), offer_track(history, role.other, scenario)
        scores = []
        for utterance in history:
            if utterance.role is not role:
                continue
            turn = utterance.turn
            reply = history[turn + 1] if turn + 1 < len(history) else None
            if not utterance.text.strip():
                scores.append(JudgeScore(turn, None, "empty message: nothing to judge"))
                continue
            if utterance.act is Act.WALKAWAY:
                scores.append(JudgeScore(turn, 1, "quit the negotiation"))
                continue
            own_after = own.standing(turn + 1)
            if utterance.act is Act.ACCEPT:
                scores.append(JudgeScore(turn, _clip(1 + 9 * own_after), "accepted the standing offer"))
                continue
            if utterance.offer_status == OfferStatus.OUT_OF_RANGE:
                scores.append(JudgeScore(turn, 1, "offer out of range"))
                continue
            if utterance.offer_status not in (OfferStatus.OK, OfferStatus.STRUCTURED):
                scores.append(JudgeScore(turn, 2, f"no readable offer ({utterance.offer_status})"))
                continue
            if reply is not None and reply.act is Act.WALKAWAY:
                scores.append(JudgeScore(turn, 1, "the other side walked away after this message"))
                continue
            own_concession = own.standing(turn) - own_after
            # the other side's offers seen from ours are 1 − its own position
            other_concession = other.standing(turn + 1) - other.standing(turn + 2)
            firm = own_concession <= self.firmness_margin and other_concession > 0
            raw = 5 + 30 * other_concession - 20 * max(0.0, own_concession - self.firmness_margin) + (1 if firm else 0)
            scores.append(JudgeScore(turn, _clip(raw), f"own concession {own_concession:+.3f}, "
                                                       f"other side's concession {other_concession:+.3f}"))
        return scores


def _clip(raw: float) -> int:
    return int(min(10, max(1, round(raw))))
