"""The negotiation domain model: roles, moves, utterances, outcomes and episodes (frozen, no I/O)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from .domains.base import Scenario


class Role(StrEnum):
    FOCAL = "focal"
    COUNTERPARTY = "counterparty"

    @property
    def other(self) -> Role:
        return Role.COUNTERPARTY if self is Role.FOCAL else Role.FOCAL


class Act(StrEnum):
    """What a message does: propose a value, accept the other side's standing offer, or quit."""

    OFFER = "offer"
    ACCEPT = "accept"
    WALKAWAY = "walkaway"


class Ending(StrEnum):
    """How an episode ended; kept apart as offline-RL datasets keep termination and truncation apart."""

    AGREEMENT = "agreement"  # offers met within tolerance (or crossed), or an explicit acceptance
    WALKAWAY = "walkaway"  # one side quit
    TURN_LIMIT = "turn_limit"  # truncated at max_turns messages
    BREAKDOWN = "breakdown"  # a side failed to state a readable offer too many times in a row
    ERROR = "error"  # a backend failed to produce a message: the episode did not really run, keep it out of scores


@dataclass(frozen=True)
class Move:
    """What an agent hands the engine. ``offer`` is the structured channel (None: parse the text)."""

    text: str
    act: Act = Act.OFFER
    offer: float | None = None
    declared_emotion: str | None = None
    error: str | None = None  # the agent could not produce a message (e.g. a failed model request)
    invalid: str | None = None  # why the reply broke the action protocol (an invalid move); its text is the raw reply


@dataclass(frozen=True)
class Utterance:
    """One message as recorded: the move plus what the engine read from it."""

    turn: int
    role: Role
    text: str
    act: Act
    offer: float | None
    offer_status: str
    declared_emotion: str | None
    perceived_emotion: str
    perceived_confidence: float
    error: str | None = None  # why no message could be produced (ending ``error``)


@dataclass(frozen=True)
class Outcome:
    ending: Ending
    agreed_value: float | None
    utility: float  # focal utility (DESIGN.md section 3)
    rounds: int  # messages exchanged
    ended_by: Role | None  # who accepted, walked away or broke down; None on the turn limit


@dataclass(frozen=True)
class Task:
    """One evaluation unit: a scenario against a counterparty persona with a seed."""

    scenario: Scenario
    persona: str
    seed: int

    @property
    def task_id(self) -> str:
        return f"{self.scenario.scenario_id}/{self.persona}/{self.seed}"


@dataclass(frozen=True)
class Episode:
    task: Task
    focal_agent: str
    counterparty_agent: str
    max_turns: int
    utterances: tuple[Utterance, ...]
    outcome: Outcome

    @property
    def episode_id(self) -> str:
        return f"{self.task.task_id}/{self.focal_agent}/{self.counterparty_agent}"

    def turns_of(self, role: Role) -> tuple[Utterance, ...]:
        return tuple(u for u in self.utterances if u.role is role)


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (same parts → same seed on every platform and run)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
