"""Human-readable and JSON renderings of an episode (for ``emoneg play`` and debugging)."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence

from .domains import get_domain
from .judge import JudgeScore
from .negotiation import Episode, Role
from .perception.offers import format_offer


def episode_to_dict(episode: Episode, scores: Sequence[JudgeScore] = ()) -> dict:
    by_turn = {s.turn: s for s in scores}
    return {
        "episode_id": episode.episode_id,
        "task_id": episode.task.task_id,
        "scenario": episode.task.scenario.to_record(),
        "persona": episode.task.persona,
        "seed": episode.task.seed,
        "focal_agent": episode.focal_agent,
        "counterparty_agent": episode.counterparty_agent,
        "max_turns": episode.max_turns,
        "turns": [
            {**dataclasses.asdict(u), "role": str(u.role), "act": str(u.act),
             "judge_score": by_turn[u.turn].score if u.turn in by_turn else None}
            for u in episode.utterances
        ],
        "outcome": {**dataclasses.asdict(episode.outcome), "ending": str(episode.outcome.ending),
                    "ended_by": str(episode.outcome.ended_by) if episode.outcome.ended_by else None},
    }


def _error_reason(episode: Episode) -> str:
    """Why the message that ended the episode could not be produced, as its backend said."""
    return next((u.error for u in reversed(episode.utterances) if u.error), None) or "no reason recorded"


def format_transcript(episode: Episode, scores: Sequence[JudgeScore] = ()) -> str:
    scenario = episode.task.scenario
    domain = get_domain(scenario.domain)
    by_turn = {s.turn: s for s in scores}
    names = {Role.FOCAL: domain.focal_role, Role.COUNTERPARTY: domain.counterparty_role}
    lines = [
        f"{scenario.scenario_id} · {domain.paper_name} ({domain.issue}, {domain.unit}) · "
        f"{episode.focal_agent} vs {episode.counterparty_agent} · seed {episode.task.seed}",
        f"anchors: {names[Role.FOCAL]} wants {format_offer(scenario.focal_anchor, domain.unit)}, "
        f"{names[Role.COUNTERPARTY]} wants {format_offer(scenario.counterparty_anchor, domain.unit)} "
        f"(focal wants it {domain.polarity}; tolerance {domain.tolerance})",
        *textwrap.wrap(scenario.context(), 100),
        "",
    ]
    for u in episode.utterances:
        offer = format_offer(u.offer, domain.unit) if u.offer is not None else "—"
        declared = u.declared_emotion or "—"
        judge = ""
        if u.turn in by_turn:
            s = by_turn[u.turn]
            judge = f" · judge {s.score if s.score is not None else 'missing'}"
        lines.append(f"{u.turn + 1:>2}. {names[u.role]} [{u.act} {offer} ({u.offer_status}) · declared {declared}"
                     f" → perceived {u.perceived_emotion} {u.perceived_confidence:.2f}{judge}]")
        lines.extend(textwrap.wrap(u.text, 96, initial_indent="    ", subsequent_indent="    "))
    o = episode.outcome
    result = {
        "agreement": f"agreement at {format_offer(o.agreed_value, domain.unit) if o.agreed_value is not None else '?'}",
        "walkaway": f"walk-away by the {names[o.ended_by] if o.ended_by else '?'}",
        "turn_limit": "turn limit reached without a deal",
        "breakdown": f"breakdown: the {names[o.ended_by] if o.ended_by else '?'} stopped making readable offers",
        "error": f"error: the {names[o.ended_by] if o.ended_by else '?'} could not produce a message "
                 f"({_error_reason(episode)}; kept out of scores)",
    }[str(o.ending)]
    lines += ["", f"ending: {result} after {o.rounds} messages · focal utility {o.utility:.3f}"]
    return "\n".join(lines)
