"""Parametric, emotion-sensitive negotiators (no LLM): the official counterparties.

A persona concedes along a time-dependent curve toward a hidden reservation value, and the *perceived*
emotion of the other side's last message (what the recognizer reads, not what was declared) shifts
its concessions and its walk-away hazard. Directions follow the negotiation literature; magnitudes are
documented knobs (``docs/counterparty.md``), not empirical claims.

All arithmetic is in the persona's own utility space (1 = its own anchor, 0 = the other side's
anchor), so one persona can play either role in any domain.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import formulas
from ..domains.base import Domain
from ..emotions import FAMILY_OF, Family
from ..engine import Agent, TurnContext
from ..negotiation import Act, Move, Role, Task, derive_seed
from ..perception.offers import format_offer
from ..registry import Registry
from ..units import round_offer
from . import phrasing


@dataclass(frozen=True)
class EmotionResponse:
    """How strongly a persona reacts to each emotion family (own-space pressure per message).

    ``pressure`` is a shift of the persona's concession target toward the other side; positive
    pressure means larger concessions. Defaults are shared by all registered personas.
    """

    dominance_gain: float = 0.15  # per dominant message, × (1 − power), shrinking with repetition
    dominance_reactance: float = 0.03  # per dominant message, × power (high-power targets push back)
    dominance_hazard: float = 0.04  # walk-away hazard per message at n = tolerance, × (0.5 + power)
    supplication_gain: float = 0.05  # × trust², decaying by `repeat_decay` per repeat
    appeasement_loss: float = 0.04  # guilt/embarrassment invites smaller concessions
    affiliation_loss: float = 0.03  # × competitiveness: happiness in a competitive frame invites toughness
    repeat_decay: float = 0.8
    max_pressure: float = 0.35  # cap on the total shift toward the other side
    min_pressure: float = -0.15  # cap on the total toughening


@dataclass(frozen=True)
class Persona:
    """A named parameter set. See ``docs/counterparty.md`` for every knob's effect."""

    name: str
    description: str
    concession_exponent: float  # e in f(t) = k + (1 − k)·t^(1/e); < 1 Boulware, > 1 Conceder
    initial_concession: float  # k
    reservation: tuple[float, float]  # hidden own-space reservation drawn uniformly per episode
    deadline: float  # fraction of max_turns at which the curve reaches the reservation
    power: float  # BATNA strength in [0, 1]
    trust: float  # in [0, 1]: how much pleas for sympathy move it
    competitiveness: float  # in [0, 1]: how much friendliness reads as weakness
    base_hazard: float  # walk-away probability per message before any emotion
    dominance_tolerance: int  # dominant messages tolerated before backlash (the inverted U's peak)
    held_out: bool = False
    response: EmotionResponse = field(default_factory=EmotionResponse)


PERSONAS: Registry[Persona] = Registry("persona")


def register_persona(persona: Persona) -> Persona:
    return PERSONAS.register(persona.name, persona)


def get_persona(name: str) -> Persona:
    """A registered persona, or a member of the sampled population (``sampled-<8 hex digits>``)."""
    if is_sampled(name) and SAMPLED_NAME.fullmatch(name):
        return _sampled_persona(name)
    return PERSONAS.get(name)


# The sampled population: counterparties whose knobs are drawn independently and uniformly from the box the
# eight training personas span (each knob's min–max over them; the held-out personas were not consulted).
# Corpora mix them in (``corpus.sampled``) so an offline selector sees many more ways of reacting to the same
# observable signals than eight fixed parameter sets, and cannot learn what works by memorising eight
# opponents; validation can play fresh members to measure generalisation without the held-out personas. A
# member's parameters are a pure function of its name, so episodes replay from the name alone. Changing this
# box changes every sampled persona: it is part of the release format (a new minor version at least).
SAMPLED_PREFIX = "sampled-"
SAMPLED_NAME = re.compile(r"sampled-[0-9a-f]{8}")
POPULATION_BOX: dict[str, tuple[float, float]] = {
    "concession_exponent": (0.4, 2.5),
    "initial_concession": (0.0, 0.08),
    "reservation_low": (0.15, 0.45),
    "reservation_width": (0.2, 0.25),
    "deadline": (0.7, 1.0),
    "power": (0.15, 0.85),
    "trust": (0.0, 0.95),
    "competitiveness": (0.1, 1.0),
    "base_hazard": (0.002, 0.006),
    "dominance_tolerance": (2, 5),  # whole numbers, both ends included
}


def sampled_persona_name(*parts: object) -> str:
    """The population member for a stable key (e.g. seed, scenario and episode index)."""
    return f"{SAMPLED_PREFIX}{derive_seed('persona-population', *parts) & 0xFFFFFFFF:08x}"


@functools.lru_cache(maxsize=8192)
def _sampled_persona(name: str) -> Persona:
    rng = random.Random(derive_seed("persona-population-member", name))
    box = POPULATION_BOX

    def draw(knob: str) -> float:
        lo, hi = box[knob]
        return round(rng.uniform(lo, hi), 4)

    knobs = {k: draw(k) for k in ("concession_exponent", "initial_concession", "reservation_low",
                                   "reservation_width", "deadline", "power", "trust", "competitiveness",
                                   "base_hazard")}
    tolerance = rng.randint(*box["dominance_tolerance"])
    low = knobs.pop("reservation_low")
    width = knobs.pop("reservation_width")
    return Persona(name=name, description="A member of the sampled training population.",
                   reservation=(low, round(low + width, 4)), dominance_tolerance=tolerance, **knobs)


def is_sampled(name: str) -> bool:
    return name.startswith(SAMPLED_PREFIX)


def persona_names(*, held_out: bool | None = None) -> tuple[str, ...]:
    """Registered persona names; ``held_out`` selects the training (False) or held-out (True) set."""
    return tuple(name for name, p in PERSONAS.items() if held_out is None or p.held_out == held_out)


@dataclass
class PersonaState:
    """What a persona tracks during one episode."""

    persona: Persona
    reservation: float
    hazard_draws: list[float]
    text_rng: random.Random
    slots: dict
    pressure: float = 0.0
    last_offer: float = 1.0  # own-space; starts at its own anchor
    dominance_count: int = 0
    supplication_count: int = 0


class PersonaAgent(Agent):
    """Plays a :class:`Persona` in either role. Without a persona it plays each task's own
    ``task.persona``, so one batch can mix counterparties."""

    def __init__(self, persona: Persona | str | None = None):
        self.persona = get_persona(persona) if isinstance(persona, str) else persona
        self.name = f"persona:{self.persona.name}" if self.persona else "persona"

    def start(self, role: Role, task: Task, domain: Domain, max_turns: int) -> PersonaState:
        p = self.persona or get_persona(task.persona)
        decisions = random.Random(derive_seed(task.seed, role, task.scenario.scenario_id, p.name, "decisions"))
        return PersonaState(
            persona=p,
            reservation=decisions.uniform(*p.reservation),
            hazard_draws=[decisions.random() for _ in range(max_turns)],
            text_rng=random.Random(derive_seed(task.seed, role, task.scenario.scenario_id, p.name, "text")),
            slots=task.scenario.slots(),
        )

    def act(self, turns: Sequence[TurnContext]) -> list[Move]:
        return [self._respond(context) for context in turns]

    def _respond(self, context: TurnContext) -> Move:
        state = context.state
        p = state.persona
        heard = context.last(context.role.other)
        family = FAMILY_OF.get(heard.perceived_emotion, Family.NEUTRAL) if heard else Family.NEUTRAL
        hazard = _perceive(p, state, family)

        domain, role = context.domain, context.role.value
        if state.hazard_draws[context.turn] < hazard:
            emotion = "anger" if p.power >= 0.5 else "disappointment"
            text = phrasing.walkaway_message(role, state.text_rng)
            return Move(phrasing.with_emotion(emotion, text, state.text_rng),
                        Act.WALKAWAY, declared_emotion=emotion)

        t = min(1.0, context.progress / p.deadline)
        floor = state.reservation - max(0.0, state.pressure)
        target = formulas.concession_target(t, state.reservation, p.initial_concession, p.concession_exponent)
        planned = max(floor, min(state.last_offer, target - state.pressure))

        standing = context.standing_offer(context.role.other)
        if standing is not None:
            heard_u = context.own_position(standing)
            if heard_u >= planned or (t >= 1.0 and heard_u >= floor):
                emotion = "relief"
                text = phrasing.accept_message(role, format_offer(standing, domain.unit), state.text_rng)
                return Move(phrasing.with_emotion(emotion, text, state.text_rng), Act.ACCEPT, standing, emotion)

        state.last_offer = planned
        value = round_offer(context.value_at_own(planned), domain.unit)
        emotion = _own_emotion(p, state, family, planned, heard)
        text = phrasing.compose_message(domain.id, role, emotion, format_offer(value, domain.unit), state.slots,
                                        state.text_rng)
        return Move(text, Act.OFFER, value, emotion)


def _perceive(p: Persona, state: PersonaState, family: Family) -> float:
    """Update pressure from the perceived family; return this turn's walk-away hazard."""
    r = p.response
    hazard = p.base_hazard * (0.5 + p.power)
    delta = 0.0
    if family is Family.DOMINANCE:
        state.dominance_count += 1
        n = state.dominance_count
        # Inverted U: each dominant message helps less than the last and past the tolerance hurts.
        delta = r.dominance_gain * (1.0 - p.power) * (1.0 - (n - 1) / p.dominance_tolerance)
        delta -= r.dominance_reactance * p.power
        hazard += r.dominance_hazard * (0.5 + p.power) * (n / p.dominance_tolerance) ** 2
    elif family is Family.SUPPLICATION:
        state.supplication_count += 1
        delta = r.supplication_gain * p.trust**2 * r.repeat_decay ** (state.supplication_count - 1)
    elif family is Family.APPEASEMENT:
        delta = -r.appeasement_loss
    elif family is Family.AFFILIATION:
        delta = -r.affiliation_loss * p.competitiveness
    state.pressure = max(r.min_pressure, min(r.max_pressure, state.pressure + delta))
    return hazard

def _own_emotion(p: Persona, state: PersonaState, family: Family, planned: float, heard) -> str:
    """The persona's own displayed emotion: a readable reaction to what it just perceived."""
    if family is Family.DOMINANCE:
        options = ("nervousness", "fear") if p.power < 0.5 else ("annoyance", "anger", "disapproval")
    elif family is Family.SUPPLICATION:
        options = ("caring", "sadness") if p.trust >= 0.5 else ("disapproval", "annoyance")
    elif family is Family.APPEASEMENT:
        options = ("pride", "approval")
    elif family is Family.AFFILIATION:
        options = ("amusement", "pride") if p.competitiveness >= 0.5 else ("joy", "optimism")
    elif heard is None:
        options = ("neutral", "optimism", "curiosity")
    else:
        options = ("neutral", "disappointment", "confusion") if planned >= state.last_offer else ("neutral",)
    return options[state.text_rng.randrange(len(options))]


def _register_defaults() -> None:
    T = dict  # noqa: N806  (short alias keeps the table readable)
    training = [
        T(name="pushover", description="Low power, quick conceder, trusting: classic anger target.",
          concession_exponent=1.8, initial_concession=0.05, reservation=(0.15, 0.35), deadline=0.8, power=0.15,
          trust=0.7, competitiveness=0.2, base_hazard=0.002, dominance_tolerance=4),
        T(name="anxious-debtor", description="Low power, nervous, linear concessions, moderately trusting.",
          concession_exponent=1.0, initial_concession=0.03, reservation=(0.2, 0.45), deadline=0.9, power=0.25,
          trust=0.5, competitiveness=0.3, base_hazard=0.004, dominance_tolerance=5),
        T(name="boulware", description="Holds firm until late, medium power, low trust.",
          concession_exponent=0.4, initial_concession=0.0, reservation=(0.3, 0.55), deadline=1.0, power=0.55,
          trust=0.2, competitiveness=0.6, base_hazard=0.004, dominance_tolerance=3),
        T(name="conceder", description="Concedes early and fast, medium power, warm.",
          concession_exponent=2.5, initial_concession=0.08, reservation=(0.25, 0.5), deadline=0.7, power=0.45,
          trust=0.6, competitiveness=0.3, base_hazard=0.003, dominance_tolerance=4),
        T(name="hardliner", description="High power, Boulware, competitive: dominance backfires.",
          concession_exponent=0.5, initial_concession=0.0, reservation=(0.45, 0.7), deadline=1.0, power=0.85,
          trust=0.1, competitiveness=0.9, base_hazard=0.006, dominance_tolerance=2),
        T(name="empath", description="High trust, responsive to pleas, linear, medium-low power.",
          concession_exponent=1.2, initial_concession=0.04, reservation=(0.2, 0.45), deadline=0.9, power=0.35,
          trust=0.95, competitiveness=0.1, base_hazard=0.003, dominance_tolerance=4),
        T(name="skeptic", description="Trust 0: ignores supplication entirely; linear; medium power.",
          concession_exponent=1.0, initial_concession=0.02, reservation=(0.3, 0.5), deadline=0.9, power=0.5,
          trust=0.0, competitiveness=0.5, base_hazard=0.004, dominance_tolerance=3),
        T(name="competitor", description="Competitive frame: friendliness invites toughness; medium-high power.",
          concession_exponent=0.8, initial_concession=0.02, reservation=(0.35, 0.6), deadline=0.95, power=0.65,
          trust=0.3, competitiveness=1.0, base_hazard=0.005, dominance_tolerance=3),
    ]
    held_out = [
        T(name="stoic", description="Slow linear concessions, average everything, never rattled.",
          concession_exponent=0.9, initial_concession=0.01, reservation=(0.35, 0.55), deadline=1.0, power=0.5,
          trust=0.4, competitiveness=0.5, base_hazard=0.002, dominance_tolerance=4),
        T(name="volatile", description="Low power but walks away easily when pushed.",
          concession_exponent=1.5, initial_concession=0.05, reservation=(0.2, 0.4), deadline=0.8, power=0.3,
          trust=0.5, competitiveness=0.4, base_hazard=0.012, dominance_tolerance=2),
        T(name="diplomat", description="Warm, trusting conceder with high power.",
          concession_exponent=2.0, initial_concession=0.06, reservation=(0.3, 0.5), deadline=0.75, power=0.75,
          trust=0.8, competitiveness=0.2, base_hazard=0.003, dominance_tolerance=3),
        T(name="shark", description="Extreme Boulware, very high power, fully competitive.",
          concession_exponent=0.3, initial_concession=0.0, reservation=(0.5, 0.75), deadline=1.0, power=0.95,
          trust=0.05, competitiveness=1.0, base_hazard=0.008, dominance_tolerance=2),
    ]
    for spec in training:
        register_persona(Persona(**spec))
    for spec in held_out:
        register_persona(Persona(**spec, held_out=True))


_register_defaults()
