"""Every negotiation formula, once, as a pure function. Everything else calls these.

Notation: ``a`` is the focal agent's anchor, ``b`` the counterparty's, ``x`` a value of the issue in
the domain unit. Positions are measured in the **focal-utility space** ``u(x) = (b − x)/(b − a)``
(1 at the focal anchor, 0 at the counterparty's), which is polarity-free: the same formula serves
domains where the focal agent wants the number low (debt, student) and high (disaster, hospital).
An agent's *own* space is ``u`` for the focal role and ``1 − u`` for the counterparty role.
"""

from __future__ import annotations

from dataclasses import dataclass


def position(x: float, a: float, b: float) -> float:
    """Focal-utility position of ``x``, unclipped: ``(b − x)/(b − a)``."""
    return (b - x) / (b - a)


def value_at(position_u: float, a: float, b: float) -> float:
    """Inverse of :func:`position`: ``x = b − u·(b − a)``."""
    return b - position_u * (b - a)


def utility(x: float | None, a: float, b: float) -> float:
    """Focal utility of an agreement at ``x``: ``clip((b − x)/(b − a), 0, 1)``; 0 without a deal (``None``)."""
    if x is None:
        return 0.0
    return min(1.0, max(0.0, position(x, a, b)))


def own_position(x: float, a: float, b: float, focal: bool) -> float:
    """Position of ``x`` in the speaker's own space: ``u(x)`` for the focal agent, ``1 − u(x)`` otherwise."""
    u = position(x, a, b)
    return u if focal else 1.0 - u


def concession_curve(t: float, k: float, e: float) -> float:
    """Faratin/Genius time-dependent tactic: ``f(t) = k + (1 − k)·t^(1/e)`` for ``t`` in [0, 1].

    ``e < 1`` is Boulware (holds firm, concedes late), ``e > 1`` Conceder, ``e = 1`` linear.
    """
    t = min(1.0, max(0.0, t))
    return k + (1.0 - k) * t ** (1.0 / e)


def concession_target(t: float, reservation: float, k: float, e: float) -> float:
    """Own-space target offer: start at 1 (own anchor), reach ``reservation`` at ``t = 1``:
    ``target = 1 − (1 − reservation)·f(t)``."""
    return 1.0 - (1.0 - reservation) * concession_curve(t, k, e)


@dataclass(frozen=True)
class RewardConfig:
    """Knobs of the step reward; defaults are the ones the released datasets use."""

    late_weight: float = 0.5  # weight of a concession at the last turn relative to the first (=1)
    agreement_bonus: float = 1.0  # times the agreement's own utility
    walkaway_penalty: float = 0.5
    concession_weight: float = 1.0  # 0 drops the per-step concession term


DEFAULT_REWARDS = RewardConfig()
# The evaluation metric as a reward: the agreement's own utility at the end, nothing else (a walk-away,
# a breakdown and the turn limit all score 0, as they do in the utility tables).
UTILITY_REWARDS = RewardConfig(agreement_bonus=1.0, walkaway_penalty=0.0, concession_weight=0.0)


def time_weight(progress: float, config: RewardConfig = DEFAULT_REWARDS) -> float:
    """Linear time weight: 1 at the first turn, ``late_weight`` at the turn limit."""
    return 1.0 - (1.0 - config.late_weight) * min(1.0, max(0.0, progress))


def step_reward(own_concession: float, opponent_concession: float, progress: float,
                config: RewardConfig = DEFAULT_REWARDS) -> float:
    """Net concession × time weight: ``c·w(t)·(opponent_concession − own_concession)``, ``c`` the
    ``concession_weight``.

    Concessions are in the speaker's own space (positive = toward the other side's anchor for one's
    own concession, toward one's own anchor for the opponent's).
    """
    return config.concession_weight * time_weight(progress, config) * (opponent_concession - own_concession)


def terminal_reward(ending: str, own_utility: float, config: RewardConfig = DEFAULT_REWARDS) -> float:
    """Bonus at the end: ``agreement_bonus·utility`` on agreement, ``−walkaway_penalty`` on a walk-away
    or breakdown, 0 on truncation (the turn limit says nothing about the outcome)."""
    if ending == "agreement":
        return config.agreement_bonus * own_utility
    if ending in ("walkaway", "breakdown"):
        return -config.walkaway_penalty
    return 0.0
