"""The batched negotiation engine (DESIGN.md section 4).

Many episodes advance in lock-step: at each turn every live episode's speaker is asked for a move in
one batched ``act`` call, and every new message is read by the emotion recognizer in one batched
call. That batching is the main lever for speed once agents are language models.

Rules: the focal agent opens, speakers strictly alternate, at most ``max_turns`` messages. Endings:

- ``agreement`` — an explicit acceptance of the other side's standing offer (the deal is that offer),
  or an offer within the domain's tolerance of, or crossing, the other side's standing offer (the deal
  is the new offer: it is the last proposal on the table and at least as good for the other side as
  what it asked for);
- ``walkaway`` — a side quits;
- ``breakdown`` — a side sends ``max_failed_offers`` messages in a row without a readable offer (an
  *invalid move*, a reply that breaks the structured action protocol, counts as one; its offer status is
  ``invalid``);
- ``turn_limit`` — ``max_turns`` messages without any of the above (truncation);
- ``error`` — an agent could not produce a message at all (a failed model request): the episode did
  not really run and is kept out of scores.

An episode is a pure function of (task, agents, their seeds and outputs), so re-running a
counterparty on recorded focal utterances reproduces the transcript (see ``agents.replay``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import formulas
from .domains.base import Domain, get_domain
from .negotiation import Act, Ending, Episode, Move, Outcome, Role, Task, Utterance
from .perception.offers import OfferStatus, parse_offer
from .protocol import INVALID

DEFAULT_MAX_TURNS = 30
READABLE = (OfferStatus.OK, OfferStatus.STRUCTURED)


@dataclass
class TurnContext:
    """What a speaker sees when asked for its next message."""

    role: Role
    task: Task
    domain: Domain
    turn: int
    max_turns: int
    history: list[Utterance]
    state: Any  # the agent's own per-episode state, from ``Agent.start``

    @property
    def progress(self) -> float:
        return self.turn / self.max_turns

    def last(self, role: Role) -> Utterance | None:
        for utterance in reversed(self.history):
            if utterance.role is role:
                return utterance
        return None

    def standing_offer(self, role: Role) -> float | None:
        """The latest readable offer ``role`` has on the table."""
        for utterance in reversed(self.history):
            if utterance.role is role and utterance.offer is not None and utterance.offer_status in READABLE:
                return utterance.offer
        return None

    def own_position(self, value: float) -> float:
        """``value`` in the speaker's own utility space (1 = own anchor, 0 = the other's)."""
        scenario = self.task.scenario
        return formulas.own_position(value, scenario.focal_anchor, scenario.counterparty_anchor,
                                     self.role is Role.FOCAL)

    def value_at_own(self, own_u: float) -> float:
        """Inverse of :meth:`own_position`, in the domain unit."""
        scenario = self.task.scenario
        u = own_u if self.role is Role.FOCAL else 1.0 - own_u
        return formulas.value_at(u, scenario.focal_anchor, scenario.counterparty_anchor)


class Agent(ABC):
    """A negotiator for either role. ``act`` is batched across episodes."""

    name: str

    def start(self, role: Role, task: Task, domain: Domain, max_turns: int) -> Any:
        """Per-episode private state (hidden reservation, random streams…); None if stateless."""
        return None

    @abstractmethod
    def act(self, turns: Sequence[TurnContext]) -> list[Move]:
        """One move per context, in order."""


class Recognizer(Protocol):
    def perceive(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(emotion label, confidence) per text."""


@dataclass
class _Live:
    task: Task
    domain: Domain
    history: list[Utterance] = field(default_factory=list)
    states: dict[Role, Any] = field(default_factory=dict)
    failed_offers: dict[Role, int] = field(default_factory=lambda: {Role.FOCAL: 0, Role.COUNTERPARTY: 0})
    outcome: Outcome | None = None


@dataclass
class Engine:
    recognizer: Recognizer
    max_turns: int = DEFAULT_MAX_TURNS
    max_failed_offers: int = 3

    def run(self, tasks: Iterable[Task], focal: Agent, counterparty: Agent, *, batch_size: int = 512,
            progress: Any = None, refill: bool = False) -> Iterator[Episode]:
        """Play every task; yields finished episodes in task order, one batch at a time (memory stays
        flat in the number of tasks). ``progress`` is an optional tqdm-like object to ``update``.

        ``refill=True`` keeps ``batch_size`` episodes live at once: a slot freed by a finished episode takes
        the next task at once (continuous batching), so a language model is not left decoding the last few
        long episodes of a batch at batch size 1–2. Each step, every live episode makes one message: the
        agents are asked once per role, for the episodes whose turn it is. Agents whose randomness lives in
        their per-episode state (personas, the teacher) play exactly the same episodes either way; a
        language model's text can depend on its batch (bfloat16), so evaluation records the setting."""
        if refill:
            yield from self._run_refilling(tasks, focal, counterparty, batch_size, progress)
            return
        batch: list[Task] = []
        for task in tasks:
            batch.append(task)
            if len(batch) == batch_size:
                yield from self._run_batch(batch, focal, counterparty, progress)
                batch = []
        if batch:
            yield from self._run_batch(batch, focal, counterparty, progress)

    def _run_refilling(self, tasks: Iterable[Task], focal: Agent, counterparty: Agent, slots: int,
                       progress: Any) -> Iterator[Episode]:
        if slots < 1:
            raise ValueError(f"batch_size must be at least 1, got {slots}")
        agents = {Role.FOCAL: focal, Role.COUNTERPARTY: counterparty}
        pending = iter(enumerate(tasks))
        live: list[tuple[int, _Live]] = []
        done: dict[int, Episode] = {}
        next_out = 0
        exhausted = False
        while True:
            while not exhausted and len(live) < slots:
                item = next(pending, None)
                if item is None:
                    exhausted = True
                    break
                index, task = item
                episode = _Live(task, get_domain(task.scenario.domain))
                for role, agent in agents.items():
                    episode.states[role] = agent.start(role, task, get_domain(task.scenario.domain), self.max_turns)
                live.append((index, episode))
            if not live:
                break
            for role in (Role.FOCAL, Role.COUNTERPARTY):
                movers = [e for _, e in live if e.outcome is None and len(e.history) < self.max_turns
                          and (Role.FOCAL if len(e.history) % 2 == 0 else Role.COUNTERPARTY) is role]
                if not movers:
                    continue
                contexts = [TurnContext(role, e.task, e.domain, len(e.history), self.max_turns, e.history,
                                        e.states[role]) for e in movers]
                moves = agents[role].act(contexts)
                if len(moves) != len(contexts):
                    raise RuntimeError(f"agent {agents[role].name!r} returned {len(moves)} moves for "
                                       f"{len(contexts)} turns")
                perceived = self.recognizer.perceive([move.text for move in moves])
                for episode, context, move, (emotion, confidence) in zip(movers, contexts, moves, perceived,
                                                                         strict=True):
                    self._record(episode, context, move, emotion, confidence)
            still = []
            for index, episode in live:
                if episode.outcome is None and len(episode.history) < self.max_turns:
                    still.append((index, episode))
                    continue
                if episode.outcome is None:
                    episode.outcome = Outcome(Ending.TURN_LIMIT, None, 0.0, len(episode.history), None)
                done[index] = Episode(episode.task, focal.name, counterparty.name, self.max_turns,
                                      tuple(episode.history), episode.outcome)
                if progress is not None:
                    progress.update(1)
            live = still
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def play(self, task: Task, focal: Agent, counterparty: Agent) -> Episode:
        return next(iter(self._run_batch([task], focal, counterparty, None)))

    def _run_batch(self, tasks: Sequence[Task], focal: Agent, counterparty: Agent, progress: Any) -> list[Episode]:
        agents = {Role.FOCAL: focal, Role.COUNTERPARTY: counterparty}
        live = []
        for task in tasks:
            domain = get_domain(task.scenario.domain)
            episode = _Live(task, domain)
            for role, agent in agents.items():
                episode.states[role] = agent.start(role, task, domain, self.max_turns)
            live.append(episode)

        for turn in range(self.max_turns):
            role = Role.FOCAL if turn % 2 == 0 else Role.COUNTERPARTY
            active = [episode for episode in live if episode.outcome is None]
            if not active:
                break
            contexts = [TurnContext(role, e.task, e.domain, turn, self.max_turns, e.history, e.states[role])
                        for e in active]
            moves = agents[role].act(contexts)
            if len(moves) != len(contexts):
                raise RuntimeError(f"agent {agents[role].name!r} returned {len(moves)} moves for {len(contexts)} turns")
            perceived = self.recognizer.perceive([move.text for move in moves])
            for episode, context, move, (emotion, confidence) in zip(active, contexts, moves, perceived, strict=True):
                self._record(episode, context, move, emotion, confidence)

        episodes = []
        for episode in live:
            if episode.outcome is None:
                episode.outcome = Outcome(Ending.TURN_LIMIT, None, 0.0, len(episode.history), None)
            episodes.append(Episode(episode.task, focal.name, counterparty.name, self.max_turns,
                                    tuple(episode.history), episode.outcome))
        if progress is not None:
            progress.update(len(episodes))
        return episodes

    def _record(self, episode: _Live, context: TurnContext, move: Move, emotion: str, confidence: float) -> None:
        domain, role = episode.domain, context.role
        standing = context.standing_offer(role.other)
        offer, status = move.offer, OfferStatus.STRUCTURED
        if move.error is not None:
            offer, status = None, "error"
        elif move.invalid is not None:
            offer, status = None, INVALID
        elif move.act is Act.OFFER and offer is None:
            parsed = parse_offer(move.text, domain.unit, domain.offer_bounds)
            offer, status = parsed.value, parsed.status
        elif move.act is Act.ACCEPT:
            offer = standing  # an acceptance states the value it accepts
        if offer is None and move.act is not Act.OFFER and move.invalid is None:
            status = OfferStatus.NO_OFFER
        episode.history.append(Utterance(context.turn, role, move.text, move.act, offer, str(status),
                                         move.declared_emotion, emotion, confidence, move.error))
        rounds = len(episode.history)
        scenario = episode.task.scenario

        def deal(value: float) -> Outcome:
            return Outcome(Ending.AGREEMENT, value,
                           formulas.utility(value, scenario.focal_anchor, scenario.counterparty_anchor), rounds, role)

        if move.error is not None:
            episode.outcome = Outcome(Ending.ERROR, None, 0.0, rounds, role)
        elif move.invalid is not None:
            episode.failed_offers[role] += 1
            if episode.failed_offers[role] >= self.max_failed_offers:
                episode.outcome = Outcome(Ending.BREAKDOWN, None, 0.0, rounds, role)
        elif move.act is Act.WALKAWAY:
            episode.outcome = Outcome(Ending.WALKAWAY, None, 0.0, rounds, role)
        elif move.act is Act.ACCEPT and standing is not None:
            episode.outcome = deal(standing)
        elif status in READABLE and offer is not None:
            episode.failed_offers[role] = 0
            if standing is not None and _meets(context, offer, standing, domain.tolerance):
                episode.outcome = deal(offer)
        else:
            episode.failed_offers[role] += 1
            if episode.failed_offers[role] >= self.max_failed_offers:
                episode.outcome = Outcome(Ending.BREAKDOWN, None, 0.0, rounds, role)


def _meets(context: TurnContext, offer: float, standing: float, tolerance: float) -> bool:
    """True when ``offer`` is within tolerance of, or at least as good for the other side as, ``standing``."""
    return abs(offer - standing) <= tolerance or context.own_position(offer) <= context.own_position(standing)
