"""Replay: re-run one side of recorded episodes on the other side's recorded messages.

Because an episode is a pure function of its task, agents and their outputs, re-running the official
counterparty on a transcript's focal messages must reproduce every counterparty message and the
ending. The leaderboard's verification rests on this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..engine import Agent, Engine, TurnContext
from ..errors import InputError
from ..negotiation import Act, Episode, Move, Role, Utterance
from ..perception.offers import OfferStatus


def recorded_move(utterance: Utterance) -> Move:
    """The move that produced ``utterance``; offers that were parsed from text are parsed again."""
    structured = utterance.offer_status == OfferStatus.STRUCTURED
    return Move(utterance.text, utterance.act, utterance.offer if structured else None, utterance.declared_emotion)


# Sent when the replayed negotiation outlives its recording: an empty walk-away, which no real
# recording contains, so the replay ends and the difference is reported instead of raised.
EXHAUSTED = Move("", Act.WALKAWAY)


class ReplayAgent(Agent):
    """Plays back the recorded messages of one role, episode by episode (keyed by task id)."""

    def __init__(self, episodes: Iterable[Episode], role: Role, name: str | None = None):
        self.role = role
        self.moves = {e.task.task_id: [recorded_move(u) for u in e.turns_of(role)] for e in episodes}
        self.name = name or f"replay:{role}"

    def start(self, role, task, domain, max_turns):
        if task.task_id not in self.moves:
            raise InputError(f"no recorded {self.role} messages for task {task.task_id}")
        return {"moves": self.moves[task.task_id], "next": 0}

    def act(self, turns: Sequence[TurnContext]) -> list[Move]:
        moves = []
        for context in turns:
            state = context.state
            if state["next"] >= len(state["moves"]):
                moves.append(EXHAUSTED)
                continue
            moves.append(state["moves"][state["next"]])
            state["next"] += 1
        return moves


@dataclass(frozen=True)
class Difference:
    task_id: str
    turn: int | None
    what: str


def replay(episodes: Sequence[Episode], counterparty: Agent, engine: Engine) -> list[Episode]:
    """Re-run ``counterparty`` against the recorded focal messages of ``episodes``."""
    focal = ReplayAgent(episodes, Role.FOCAL, name=episodes[0].focal_agent if episodes else None)
    return list(engine.run([e.task for e in episodes], focal, counterparty))


def differences(recorded: Episode, replayed: Episode) -> list[Difference]:
    """Where ``replayed`` departs from ``recorded``: any message field or the outcome."""
    found = []
    task_id = recorded.task.task_id
    for a, b in zip(recorded.utterances, replayed.utterances):
        if a != b:
            fields = [f for f in ("text", "act", "offer", "offer_status", "perceived_emotion")
                      if getattr(a, f) != getattr(b, f)] or ["perceived_confidence"]
            found.append(Difference(task_id, a.turn, f"{a.role} message differs in {', '.join(fields)}"))
    if len(recorded.utterances) != len(replayed.utterances):
        found.append(Difference(task_id, None, f"recorded {len(recorded.utterances)} messages, replay produced "
                                               f"{len(replayed.utterances)}"))
    if recorded.outcome != replayed.outcome:
        found.append(Difference(task_id, None, f"ending differs: recorded {recorded.outcome.ending}, "
                                               f"replay {replayed.outcome.ending}"))
    return found
