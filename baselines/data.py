"""Training data for the expression learners, read from a release the way users read it
(``datasets.load_dataset(release, config)``): the SFT turns kept by the advantage filter, the
emotion-free variant of the same turns, and the JPO examples with judge-derived advantages.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emoneg_bench.domains import domain_ids
from emoneg_bench.emotions import GOEMOTIONS, emotion_instruction
from emoneg_bench.errors import InputError
from emoneg_bench.release import load_release_dataset


@dataclass(frozen=True)
class Selection:
    """The rows a trainer uses and where their ranking came from (recorded in the run's metadata)."""

    rows: list[dict]
    available: int
    advantage_source: str


def check_domain(domain: str) -> str:
    if domain != "all" and domain not in domain_ids():
        raise InputError(f"unknown domain {domain!r}; expected 'all' or one of {', '.join(domain_ids())}",
                         field="domain")
    return domain


def load_split(release: str | Path, config: str, split: str, domain: str = "all", role: str = "focal"):
    """One config's split as a ``datasets.Dataset``, narrowed to a domain and a role."""
    check_domain(domain)
    dataset = load_release_dataset(release, config, split)
    keep = dataset.filter(lambda d, r: (domain == "all" or d == domain) and r == role,
                          input_columns=["domain", "role"])
    if len(keep) == 0:
        raise InputError(f"release {release} has no {role} {config} rows for domain {domain!r} in split {split!r}")
    return keep


def columns(dataset, *names: str) -> dict[str, list]:
    """Whole columns as Python lists, read in one pass (a ``datasets`` column iterated row by row costs
    ~50 µs a row: minutes on a full release). A plain mapping of columns is read as is."""
    if isinstance(dataset, Mapping):
        return {name: list(dataset[name]) for name in names}
    return dataset.select_columns(list(names))[:]


def iql_advantages(release: str | Path, rows, iql: str | Path, role: str = "focal", split: str = "train") -> np.ndarray:
    """Q(s, a) − V(s) of the IQL critic for each SFT row (``rows``: its ``episode_id`` and ``turn`` columns),
    matched to the ``role``'s transition by (episode, turn)."""
    from .selector import IQLSelector

    selector = IQLSelector.load(iql)
    transitions = load_split(release, "transitions", split, "all", role)
    known = columns(transitions, "episode_id", "turn")
    index = {key: i for i, key in enumerate(zip(known["episode_id"], known["turn"]))}
    try:
        order = [index[key] for key in zip(rows["episode_id"], rows["turn"])]
    except KeyError as missing:
        raise InputError(f"release {release}: sft turn {missing} has no transition; the release is inconsistent "
                         f"(run `emoneg validate-release`)") from None
    picked = transitions.select(order).select_columns(["state", "action"]).with_format("numpy")[:]  # one pass
    return selector.advantages(np.asarray(np.stack(picked["state"]), dtype=np.float32), np.asarray(picked["action"]))


def top_fraction(rows, advantages: np.ndarray, fraction: float) -> list[int]:
    """Indices of the top ``fraction`` rows by advantage; ties broken by (episode id, turn), so the
    selection is a pure function of the data."""
    if not 0 < fraction <= 1:
        raise InputError(f"top-k fraction must be in (0, 1], got {fraction}", field="top_k")
    keys = list(zip(*columns(rows, "episode_id", "turn").values()))
    order = sorted(range(len(keys)), key=lambda i: (-float(advantages[i]), keys[i]))
    return sorted(order[: max(1, math.ceil(fraction * len(order)))])


def without_emotion(messages: list[dict], emotion: str) -> list[dict]:
    """The same conversation as an emotion-free negotiator sees it: every turn's emotion instruction removed
    (the prompt ends each of the negotiator's user turns with one)."""
    last = messages[-2] if messages and messages[-1]["role"] == "assistant" else messages[-1]
    if last["role"] != "user" or emotion_instruction(emotion) not in last["content"]:
        raise InputError(f"sft row's last user message does not carry the {emotion!r} instruction; "
                         f"expected a release written by this toolkit", field="messages")
    return [{"role": m["role"], "content": _strip_instructions(m["content"])} if m["role"] == "user" else m
            for m in messages]


def _strip_instructions(text: str) -> str:
    for instruction in _INSTRUCTIONS:
        text = text.replace(f"{instruction} ", "")
    return text


_INSTRUCTIONS = tuple(emotion_instruction(e) for e in GOEMOTIONS)


def sft_selection(release: str | Path, *, domain: str = "all", top_k: float = 0.10, iql: str | Path | None = None,
                  emotion: bool = True, role: str = "focal", split: str = "train") -> Selection:
    """The SFT examples: the top-``top_k`` focal turns of ``split`` by advantage (IQL's Q − V when ``iql`` names a
    trained selector, else the release's Monte-Carlo ``advantage`` column), as chat ``messages``."""
    rows = load_split(release, "sft", split, domain, role)
    values = columns(rows, "episode_id", "turn", "advantage")
    if iql is not None:
        advantages, source = iql_advantages(release, values, iql, role, split), f"iql:{Path(iql).name}"
    else:
        advantages, source = np.asarray(values["advantage"], dtype=np.float64), "release:monte-carlo"
    keep = top_fraction(values, advantages, top_k)
    picked = columns(rows.select(keep), "messages", "emotion_name")
    examples = []
    for messages, name, advantage in zip(picked["messages"], picked["emotion_name"], advantages[keep]):
        examples.append({"messages": messages if emotion else without_emotion(messages, name),
                         "emotion": name, "advantage": float(advantage)})
    return Selection(examples, len(rows), source)


def jpo_selection(release: str | Path, *, domain: str = "all", max_examples: int | None = None,
                  role: str = "focal", seed: int = 0, split: str = "train") -> Selection:
    """Logged (prompt, response) pairs of ``split`` with a judge score, advantage = the score standardised within
    its scenario (the paper's group normalisation); groups with one score or no spread give 0."""
    rows = load_split(release, "sft", split, domain, role)
    values = columns(rows, "quality", "scenario_id")
    scored = [i for i, q in enumerate(values["quality"]) if q is not None]
    if not scored:
        raise InputError(f"release {release} has no judge scores (sft.quality) to derive JPO advantages from")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(scored):
        groups[values["scenario_id"][row]].append(i)
    quality = np.asarray([values["quality"][row] for row in scored], dtype=np.float64)
    advantage = np.zeros(len(quality))
    for members in groups.values():
        q = quality[members]
        spread = q.std()
        advantage[members] = (q - q.mean()) / spread if spread > 0 else 0.0
    order = np.arange(len(quality))
    if max_examples is not None and max_examples < len(order):
        order = np.sort(np.random.default_rng(seed).choice(len(order), size=max_examples, replace=False))
    messages = columns(rows.select([scored[i] for i in order]), "messages")["messages"]
    examples = [{"messages": m, "advantage": float(a)} for m, a in zip(messages, advantage[order])]
    return Selection(examples, len(quality), "judge:scenario-standardised")
