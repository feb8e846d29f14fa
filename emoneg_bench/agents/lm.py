"""Language-model negotiators and the LM judge.

An LM negotiator sees the negotiation through ``prompts.negotiator_messages`` (compact, prefix-stable chat
prompts) and speaks one of the action protocols of ``emoneg_bench.protocol``:

- ``structured`` (default): the reply is one JSON object (act, offer, message), constrained while decoding
  where the backend can; the persona reads the act and offer, the recognizer the message. A reply that breaks
  the schema is retried once with a one-line correction (only possible where the backend cannot constrain,
  e.g. an HTTP server that ignores ``response_format``); still broken, it is an invalid move.
- ``text``: free text through the engine's offer parser; text without a readable offer counts toward a
  ``breakdown``, an acceptance without a number accepts the standing offer.

Each live episode is a backend *session*, so a backend that keeps per-episode caches (the local one) computes
only what is new in each turn's prompt. A failed model request ends the episode as ``error`` (kept out of
scores). Generation is batched across episodes.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..backends.base import Backend, SamplingParams
from ..domains.base import Domain
from ..engine import Agent, TurnContext
from ..judge import RUBRIC, JudgeScore
from ..negotiation import Act, Episode, Move, Role, Task, derive_seed
from ..perception.offers import OfferStatus, parse_offer
from ..prompts import WINDOW, negotiator_messages
from ..protocol import DEFAULT_PROTOCOL, Action, action_schema, check_protocol, parse_action
from .teacher import EmotionSchedule, parse_schedule

# An acceptance without a number ("Deal.", "I accept your offer.") accepts the standing offer.
ACCEPTANCE = re.compile(r"\b(i accept|we accept|accepted|deal\b|it's a deal|agreed|we have a deal|you have a deal)",
                        re.IGNORECASE)
DEFAULT_PARAMS = SamplingParams(max_new_tokens=128)
CORRECTION = "That reply was not valid ({reason}). Answer with exactly one JSON object in the format above."


SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_SESSIONS = itertools.count()


def clean_reply(text: str, role_name: str) -> str:
    """Drop an echoed speaker label ("Creditor: …") and a sentence cut off by the token limit."""
    text = text.strip()
    if text.lower().startswith(f"{role_name.lower()}:"):
        text = text[len(role_name) + 1:].strip()
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    if ends and ends[-1] < len(text):
        text = text[: ends[-1]]
    return text


@dataclass
class LMState:
    emotion_rng: random.Random
    session: int  # the backend session of this episode and role
    turn_index: int = 0


class LMNegotiator(Agent):
    """A backend playing either role; ``schedule=None`` makes it emotion-free (vanilla)."""

    def __init__(self, backend: Backend, schedule: EmotionSchedule | str | None = None,
                 params: SamplingParams = DEFAULT_PARAMS, name: str | None = None,
                 protocol: str = DEFAULT_PROTOCOL, window: int = WINDOW):
        self.backend = backend
        self.schedule = parse_schedule(schedule) if isinstance(schedule, str) else schedule
        self.params = params
        self.protocol = check_protocol(protocol)
        self.window = window  # own turns per transcript window (prompts.WINDOW)
        self.name = name or f"lm:{backend.name}" + (f":{self.schedule.name}" if self.schedule else "")

    def start(self, role: Role, task: Task, domain: Domain, max_turns: int) -> LMState:
        return LMState(random.Random(derive_seed(task.seed, role, task.scenario.scenario_id, "lm-emotion")),
                       next(_SESSIONS))

    def act(self, turns: Sequence[TurnContext]) -> list[Move]:
        emotions = []
        for context in turns:
            state: LMState = context.state
            emotions.append(self.schedule.choose_in(context, state.turn_index, state.emotion_rng) if self.schedule else None)
            state.turn_index += 1
        conversations = [negotiator_messages(c.domain, c.role, c.task.scenario, c.history, e, self.protocol,
                                             self.window)
                         for c, e in zip(turns, emotions)]
        params = replace(self.params, seed=derive_seed(self.params.seed, turns[0].turn) % 2**31) if turns else self.params
        structured = self.protocol == "structured"
        schemas = [action_schema(c.task.scenario) for c in turns] if structured else None
        generations = self.backend.generate(conversations, params, schemas=schemas,
                                            sessions=[c.state.session for c in turns])
        if not structured:
            return [self._text_move(c, e, g) for c, e, g in zip(turns, emotions, generations, strict=True)]
        parsed = [parse_action(g.text, c.task.scenario) if g.ok else None
                  for c, g in zip(turns, generations, strict=True)]
        retry = [i for i, p in enumerate(parsed) if isinstance(p, str)]
        if retry:  # one correction for a backend that could not constrain its decoding
            again = self.backend.generate(
                [[*conversations[i], {"role": "assistant", "content": generations[i].text},
                  {"role": "user", "content": CORRECTION.format(reason=parsed[i])}] for i in retry],
                params, schemas=[schemas[i] for i in retry])
            for i, generation in zip(retry, again, strict=True):
                if generation.ok and isinstance(action := parse_action(generation.text, turns[i].task.scenario),
                                                Action):
                    parsed[i], generations[i] = action, generation
        moves = []
        for emotion, generation, action in zip(emotions, generations, parsed, strict=True):
            if not generation.ok:
                moves.append(Move("", declared_emotion=emotion, error=generation.error or "no text"))
            elif isinstance(action, Action):
                moves.append(Move(action.message, action.act, float(action.offer), emotion))
            else:
                moves.append(Move(generation.text, declared_emotion=emotion, invalid=action))
        return moves

    @staticmethod
    def _text_move(context: TurnContext, emotion: str | None, generation) -> Move:
        if not generation.ok:
            return Move("", declared_emotion=emotion, error=generation.error or "no text")
        text = clean_reply(generation.text, context.domain.role_name(str(context.role)))
        parsed = parse_offer(text, context.domain.unit, context.domain.offer_bounds)
        act = Act.ACCEPT if parsed.status is OfferStatus.NO_OFFER and ACCEPTANCE.search(text) else Act.OFFER
        return Move(text, act, declared_emotion=emotion)


JUDGE_INSTRUCTION = RUBRIC + " Answer with the score only, as 'Score: N'."
JUDGE_PARAMS = SamplingParams(max_new_tokens=8)
SCORE = re.compile(r"\b(?:score\s*[:=]?\s*)?(10|[1-9])\s*(?:/\s*10)?\b", re.IGNORECASE)


def parse_score(reply: str) -> int | None:
    """The first score from 1 to 10 in a judge's reply ("Score: 7", "7/10", "8"), else None."""
    match = SCORE.search(reply)
    return int(match.group(1)) if match else None


class LMJudge:
    """Scores each message of one side with a language model using the rubric of ``judge.RUBRIC``.
    A reply without a score from 1 to 10, or a failed request, is a missing score with the reason."""

    name = "lm"

    def __init__(self, backend: Backend, params: SamplingParams = JUDGE_PARAMS):
        self.backend, self.params = backend, params

    def score_episodes(self, episodes: Sequence[Episode], role: Role = Role.FOCAL) -> list[list[JudgeScore]]:
        from ..domains import get_domain

        requests, index = [], []
        for e, episode in enumerate(episodes):
            domain = get_domain(episode.task.scenario.domain)
            names = {Role.FOCAL: domain.focal_role, Role.COUNTERPARTY: domain.counterparty_role}
            system = JUDGE_INSTRUCTION.format(role=names[role], issue=domain.issue, unit=domain.unit)
            for u in episode.turns_of(role):
                context = "\n".join(f"{names[h.role].capitalize()}: {h.text}" for h in episode.utterances[: u.turn + 2])
                requests.append([{"role": "system", "content": system},
                                 {"role": "user", "content": f"Transcript:\n{context}\n\nScore message {u.turn + 1} "
                                                             f"(the {names[role]}'s: \"{u.text}\")."}])
                index.append((e, u.turn))
        generations = self.backend.generate(requests, self.params) if requests else []
        scores: list[list[JudgeScore]] = [[] for _ in episodes]
        for (e, turn), generation in zip(index, generations, strict=True):
            if not generation.ok:
                scores[e].append(JudgeScore(turn, None, f"judge request failed: {generation.error}"))
                continue
            score = parse_score(generation.text)
            scores[e].append(JudgeScore(turn, score, f"lm judge: {generation.text.strip()[:80]}")
                             if score is not None else
                             JudgeScore(turn, None, f"no score in the judge's reply {generation.text[:80]!r}"))
        return scores

    def score_episode(self, episode: Episode, role: Role = Role.FOCAL) -> list[JudgeScore]:
        return self.score_episodes([episode], role)[0]
