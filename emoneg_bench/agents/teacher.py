"""The teacher: a simulated negotiator that writes emotion-conditioned messages from the phrasing
bank, used to generate training corpora. Works in either role.

Its offers follow its own time-dependent concession tactic (drawn per episode from seeded ranges) and
are independent of the emotion it shows, so a sweep over emotions changes nothing but the emotion.
Which emotion it shows at each turn comes from a schedule.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .. import formulas
from ..domains.base import Domain
from ..emotions import GOEMOTIONS, get_emotion
from ..engine import Agent, TurnContext
from ..negotiation import Act, Move, Role, Task, derive_seed
from ..perception.offers import format_offer
from ..units import round_offer
from . import phrasing


class EmotionSchedule:
    """Chooses the emotion for each of an agent's turns. ``turn_index`` counts the agent's own turns.

    Agents call :meth:`choose_in`, which sees the whole turn context; schedules that only need the turn
    index implement :meth:`choose`, state-dependent selectors (the IQL policy) override ``choose_in``.
    """

    name: str

    def choose(self, turn_index: int, rng: random.Random) -> str:
        raise NotImplementedError

    def choose_in(self, context: TurnContext, turn_index: int, rng: random.Random) -> str:
        return self.choose(turn_index, rng)


@dataclass(frozen=True)
class UniformSchedule(EmotionSchedule):
    """Uniformly random over ``emotions`` at every turn (the corpus sweep)."""

    emotions: tuple[str, ...] = GOEMOTIONS

    def __post_init__(self):
        for emotion in self.emotions:
            get_emotion(emotion)

    @property
    def name(self) -> str:
        return "random" if self.emotions == GOEMOTIONS else "random:" + "+".join(self.emotions)

    def choose(self, turn_index: int, rng: random.Random) -> str:
        return self.emotions[rng.randrange(len(self.emotions))]


@dataclass(frozen=True)
class FixedSchedule(EmotionSchedule):
    """The same emotion at every turn (per-emotion analysis)."""

    emotion: str

    def __post_init__(self):
        get_emotion(self.emotion)

    @property
    def name(self) -> str:
        return f"fixed-{self.emotion}"

    def choose(self, turn_index: int, rng: random.Random) -> str:
        return self.emotion


@dataclass(frozen=True)
class GivenSchedule(EmotionSchedule):
    """An explicit sequence; the last emotion repeats once the sequence runs out."""

    emotions: tuple[str, ...]

    def __post_init__(self):
        if not self.emotions:
            raise ValueError("a given emotion schedule needs at least one emotion")
        for emotion in self.emotions:
            get_emotion(emotion)

    @property
    def name(self) -> str:
        return "given:" + "+".join(self.emotions)

    def choose(self, turn_index: int, rng: random.Random) -> str:
        return self.emotions[min(turn_index, len(self.emotions) - 1)]


def parse_schedule(spec: str) -> EmotionSchedule:
    """``random`` | ``random:anger+joy`` | ``fixed-anger`` / ``anger`` | ``given:anger+neutral+…``."""
    if spec == "random":
        return UniformSchedule()
    if spec.startswith("random:"):
        return UniformSchedule(tuple(spec.removeprefix("random:").split("+")))
    if spec.startswith("given:"):
        return GivenSchedule(tuple(spec.removeprefix("given:").split("+")))
    return FixedSchedule(spec.removeprefix("fixed-"))


@dataclass(frozen=True)
class TeacherTactic:
    """Ranges the teacher's per-episode concession parameters are drawn from."""

    exponent: tuple[float, float] = (0.6, 1.6)
    initial_concession: tuple[float, float] = (0.0, 0.05)
    reservation: tuple[float, float] = (0.25, 0.5)


@dataclass
class TeacherState:
    exponent: float
    initial_concession: float
    reservation: float
    emotion_rng: random.Random
    text_rng: random.Random
    slots: dict
    turn_index: int = 0
    last_offer: float = 1.0


class TeacherAgent(Agent):
    def __init__(self, schedule: EmotionSchedule | str = "random", tactic: TeacherTactic = TeacherTactic()):
        self.schedule = parse_schedule(schedule) if isinstance(schedule, str) else schedule
        self.tactic = tactic
        self.name = f"teacher:{self.schedule.name}"

    def start(self, role: Role, task: Task, domain: Domain, max_turns: int) -> TeacherState:
        key = (task.seed, role, task.scenario.scenario_id, "teacher")
        tactic = random.Random(derive_seed(*key, "tactic"))
        return TeacherState(
            exponent=tactic.uniform(*self.tactic.exponent),
            initial_concession=tactic.uniform(*self.tactic.initial_concession),
            reservation=tactic.uniform(*self.tactic.reservation),
            emotion_rng=random.Random(derive_seed(*key, "emotion")),
            text_rng=random.Random(derive_seed(*key, "text")),
            slots=task.scenario.slots(),
        )

    def act(self, turns: Sequence[TurnContext]) -> list[Move]:
        return [self._respond(context) for context in turns]

    def _respond(self, context: TurnContext) -> Move:
        state: TeacherState = context.state
        emotion = self.schedule.choose_in(context, state.turn_index, state.emotion_rng)
        state.turn_index += 1
        domain, role = context.domain, context.role.value
        target = formulas.concession_target(context.progress, state.reservation, state.initial_concession,
                                            state.exponent)
        planned = min(state.last_offer, target)
        standing = context.standing_offer(context.role.other)
        if standing is not None and context.own_position(standing) >= planned:
            text = phrasing.accept_message(role, format_offer(standing, domain.unit), state.text_rng)
            return Move(phrasing.with_emotion(emotion, text, state.text_rng), Act.ACCEPT, standing, emotion)
        state.last_offer = planned
        value = round_offer(context.value_at_own(planned), domain.unit)
        text = phrasing.compose_message(domain.id, role, emotion, format_offer(value, domain.unit),
                                        state.slots, state.text_rng)
        return Move(text, Act.OFFER, value, emotion)
