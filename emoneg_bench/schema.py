"""The dataset schema, declared once as Hugging Face ``Features`` and reused by the writer, the
dataset card, the validator and the tests; plus the functions that turn domain objects into rows.

Emotions are ``ClassLabel`` over GoEmotions-28 (−1 when absent), with the names also stored as
strings so DuckDB and pandas users see labels. Nested turns are ``List({...})`` (datasets ≥ 4).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from functools import cache

from .domains import domain_ids, get_domain
from .domains.base import Scenario
from .emotions import EMOTION_INDEX, GOEMOTIONS
from .features import STATE_DIM
from .judge import JudgeScore
from .negotiation import Ending, Episode, Role, Task
from .prompts import negotiator_messages, reply_content
from .protocol import DEFAULT_PROTOCOL
from .rewards import Decision

CONFIGS = ("episodes", "transitions", "sft", "scenarios", "tasks")
SFT_PROTOCOL = DEFAULT_PROTOCOL  # the sft config's messages are written in the structured action protocol
ENDINGS = tuple(str(e) for e in Ending)
NO_LABEL = -1


def emotion_id(name: str | None) -> int:
    return NO_LABEL if name is None else EMOTION_INDEX[name]


@cache
def scenario_fields() -> dict[str, type]:
    """Every typed scenario field across the registered domains (name → python type), in a stable order."""
    fields: dict[str, type] = {}
    for domain_id in domain_ids():
        hints = typing.get_type_hints(get_domain(domain_id).scenario_type)
        for f in dataclasses.fields(get_domain(domain_id).scenario_type):
            if f.name not in fields:
                fields[f.name] = _base_type(hints[f.name])
    return fields


def _base_type(hint) -> type:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


@cache
def features(config: str):
    """The ``datasets.Features`` of one config."""
    from datasets import ClassLabel, Features, List, Value

    emotion = ClassLabel(names=list(GOEMOTIONS))
    if config == "episodes":
        return Features({
            "episode_id": Value("string"), "task_id": Value("string"), "split": Value("string"),
            "domain": Value("string"), "scenario_id": Value("string"),
            "focal_anchor": Value("int32"), "counterparty_anchor": Value("int32"),
            "unit": Value("string"), "polarity": Value("string"), "scenario_context": Value("string"),
            "persona": Value("string"), "focal_agent": Value("string"), "counterparty_agent": Value("string"),
            "seed": Value("int64"), "max_turns": Value("int32"),
            "ending": ClassLabel(names=list(ENDINGS)), "ending_name": Value("string"),
            "agreed_value": Value("float64"), "utility": Value("float64"), "rounds": Value("int32"),
            "ended_by": Value("string"),
            "turns": List({
                "turn": Value("int32"), "role": Value("string"), "text": Value("string"), "act": Value("string"),
                "offer": Value("float64"), "offer_status": Value("string"),
                "declared_emotion": emotion, "declared_emotion_name": Value("string"),
                "perceived_emotion": emotion, "perceived_emotion_name": Value("string"),
                "perceived_confidence": Value("float32"), "judge_score": Value("int8"),
            }),
        })
    if config == "transitions":
        return Features({
            "episode_id": Value("string"), "split": Value("string"), "domain": Value("string"),
            "scenario_id": Value("string"), "persona": Value("string"), "role": Value("string"),
            "turn": Value("int32"),
            "state": List(Value("float32"), length=STATE_DIM),
            "action": emotion, "action_name": Value("string"),
            "reward": Value("float32"), "utility_reward": Value("float32"),
            "next_state": List(Value("float32"), length=STATE_DIM),
            "terminated": Value("bool"), "truncated": Value("bool"),
            "judge_score": Value("int8"),
        })
    if config == "sft":
        return Features({
            "episode_id": Value("string"), "split": Value("string"), "domain": Value("string"),
            "scenario_id": Value("string"), "persona": Value("string"), "role": Value("string"),
            "turn": Value("int32"),
            "messages": List({"role": Value("string"), "content": Value("string")}),
            "emotion": emotion, "emotion_name": Value("string"),
            "advantage": Value("float32"), "quality": Value("int8"),
        })
    if config == "scenarios":
        types_ = {int: Value("int64"), float: Value("float64"), str: Value("string")}
        return Features({"split": Value("string"), **{name: types_[t] for name, t in scenario_fields().items()},
                         "context": Value("string")})
    if config == "tasks":
        return Features({"task_id": Value("string"), "split": Value("string"), "domain": Value("string"),
                         "scenario_id": Value("string"), "persona": Value("string"), "seed": Value("int64")})
    raise KeyError(config)


def arrow_table(config: str, rows: Sequence[dict]):
    """Rows as an Arrow table with the config's schema (the HF ``Features`` ride along as metadata)."""
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=features(config).arrow_schema)


def episode_row(episode: Episode, split: str, scores: Sequence[JudgeScore]) -> dict:
    scenario, outcome = episode.task.scenario, episode.outcome
    domain = get_domain(scenario.domain)
    by_turn = {s.turn: s.score for s in scores}
    return {
        "episode_id": episode.episode_id, "task_id": episode.task.task_id, "split": split,
        "domain": scenario.domain, "scenario_id": scenario.scenario_id,
        "focal_anchor": scenario.focal_anchor, "counterparty_anchor": scenario.counterparty_anchor,
        "unit": str(domain.unit), "polarity": str(domain.polarity), "scenario_context": scenario.context(),
        "persona": episode.task.persona, "focal_agent": episode.focal_agent,
        "counterparty_agent": episode.counterparty_agent, "seed": episode.task.seed, "max_turns": episode.max_turns,
        "ending": ENDINGS.index(str(outcome.ending)), "ending_name": str(outcome.ending),
        "agreed_value": outcome.agreed_value, "utility": outcome.utility, "rounds": outcome.rounds,
        "ended_by": str(outcome.ended_by) if outcome.ended_by else None,
        "turns": [{
            "turn": u.turn, "role": str(u.role), "text": u.text, "act": str(u.act), "offer": u.offer,
            "offer_status": u.offer_status,
            "declared_emotion": emotion_id(u.declared_emotion), "declared_emotion_name": u.declared_emotion,
            "perceived_emotion": emotion_id(u.perceived_emotion), "perceived_emotion_name": u.perceived_emotion,
            "perceived_confidence": u.perceived_confidence, "judge_score": by_turn.get(u.turn),
        } for u in episode.utterances],
    }


def transition_rows(episode: Episode, split: str, decisions: Sequence[Decision], scores: Sequence[JudgeScore],
                    role: Role = Role.FOCAL) -> list[dict]:
    by_turn = {s.turn: s.score for s in scores}
    scenario = episode.task.scenario
    return [{
        "episode_id": episode.episode_id, "split": split, "domain": scenario.domain,
        "scenario_id": scenario.scenario_id, "persona": episode.task.persona, "role": str(role), "turn": d.turn,
        "state": d.state.tolist(), "action": emotion_id(d.action), "action_name": d.action,
        "reward": d.reward, "utility_reward": d.utility_reward, "next_state": d.next_state.tolist(),
        "terminated": d.terminated, "truncated": d.truncated, "judge_score": by_turn.get(d.turn),
    } for d in decisions]


def sft_rows(episode: Episode, split: str, decisions: Sequence[Decision], advantages: Sequence[float],
             scores: Sequence[JudgeScore], role: Role = Role.FOCAL) -> list[dict]:
    by_turn = {s.turn: s.score for s in scores}
    scenario = episode.task.scenario
    domain = get_domain(scenario.domain)
    rows = []
    for decision, advantage in zip(decisions, advantages, strict=True):
        utterance = episode.utterances[decision.turn]
        prompt = negotiator_messages(domain, role, scenario, episode.utterances[: decision.turn], decision.action,
                                     SFT_PROTOCOL)
        rows.append({
            "episode_id": episode.episode_id, "split": split, "domain": scenario.domain,
            "scenario_id": scenario.scenario_id, "persona": episode.task.persona, "role": str(role),
            "turn": decision.turn,
            "messages": [*prompt, {"role": "assistant", "content": reply_content(utterance, SFT_PROTOCOL)}],
            "emotion": emotion_id(decision.action), "emotion_name": decision.action,
            "advantage": advantage, "quality": by_turn.get(decision.turn),
        })
    return rows


def scenario_row(scenario: Scenario, split: str) -> dict:
    record = scenario.to_record()
    return {"split": split, **{name: record.get(name) for name in scenario_fields()}, "context": record["context"]}


def task_row(task: Task, split: str) -> dict:
    return {"task_id": task.task_id, "split": split, "domain": task.scenario.domain,
            "scenario_id": task.scenario.scenario_id, "persona": task.persona, "seed": task.seed}
