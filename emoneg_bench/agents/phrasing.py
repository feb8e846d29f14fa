"""The emotion-conditioned phrasing bank a simulated negotiator writes its messages from.

The bank is data, ``emoneg_bench/data/phrases.json``; this module loads it once, checks its shape and
composes messages. A message is an emotion clause, then the offer sentence (an emotion-flavoured frame
or the domain's neutral offer sentence), with an optional justification that cites scenario facts
placed before or after the offer sentence.

The last :data:`HELD_OUT_CLAUSES` clauses of every emotion are held out: the built-in recognizer trains
on the others, so its accuracy on the held-out ones measures more than memorised wording.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from ..emotions import GOEMOTIONS
from ..errors import InputError, UnknownNameError

BANK_FILE = "emoneg_bench/data/phrases.json"
ROLES = ("focal", "counterparty")
SPLITS = ("all", "train", "held_out")
OFFER_SLOT = "{offer}"

HELD_OUT_CLAUSES = 4
FRAME_PROBABILITY = 0.35  # offer sentence: emotion frame, else the domain's neutral template
JUSTIFICATION_PROBABILITY = 0.6
JUSTIFICATION_FIRST_PROBABILITY = 0.5  # justification before the offer sentence, else after it

# Sentences per list, and how many ``{offer}`` slots each sentence holds.
PER_EMOTION = {"emotion_clauses": (16, 0), "emotion_offer_frames": (5, 1), "independent_eval": (8, 0)}
PER_DOMAIN_ROLE = {"offer_templates": (14, 1), "justifications": (12, 0)}
PER_ROLE = {"accept_templates": (8, 1), "walkaway_templates": (8, 0)}
# Sentences that must carry no slot at all (justifications carry scenario slots, checked by the tests).
SLOTLESS = ("emotion_clauses", "independent_eval", "walkaway_templates")

Split = tuple[str, str]  # a template cut at its ``{offer}`` slot: (before, after)


@dataclass(frozen=True)
class PhrasingBank:
    """The bank, pre-split for composition: templates are cut at ``{offer}`` once, at load."""

    clauses: dict[str, dict[str, tuple[str, ...]]]  # emotion -> split -> clauses
    frames: dict[str, tuple[Split, ...]]  # emotion -> offer frames
    offer_templates: dict[tuple[str, str], tuple[Split, ...]]  # (domain, role) -> neutral offer sentences
    justifications: dict[tuple[str, str], tuple[str, ...]]  # (domain, role) -> slot templates
    accept: dict[str, tuple[Split, ...]]
    walkaway: dict[str, tuple[str, ...]]
    independent_eval: tuple[tuple[str, str], ...]  # (text, emotion)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(domain for domain, _ in self.offer_templates))


def _sentences(value: Any, count: int, offer_slots: int, field: str, slotless: bool) -> tuple[str, ...]:
    """Check one list of the bank: ``count`` distinct strings, each with ``offer_slots`` ``{offer}``."""
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise InputError("expected a list of non-empty strings", file=BANK_FILE, field=field)
    if len(value) != count:
        raise InputError(f"expected {count} sentences, found {len(value)}", file=BANK_FILE, field=field)
    if len(set(value)) != count:
        raise InputError("sentences must be distinct", file=BANK_FILE, field=field)
    for sentence in value:
        if sentence.count(OFFER_SLOT) != offer_slots:
            raise InputError(f"expected {offer_slots} {OFFER_SLOT} slot(s) in {sentence!r}", file=BANK_FILE,
                             field=field)
        if slotless and ("{" in sentence or "}" in sentence):
            raise InputError(f"no slots allowed, found braces in {sentence!r}", file=BANK_FILE, field=field)
    return tuple(value)


def _keyed(parent: Mapping[str, Any], key: str, expected: tuple[str, ...] | None, field: str) -> dict[str, Any]:
    """``parent[key]``, checked to be an object with exactly the ``expected`` keys."""
    value = parent.get(key)
    if not isinstance(value, dict):
        raise InputError("expected an object", file=BANK_FILE, field=field)
    if expected is not None and set(value) != set(expected):
        missing, extra = sorted(set(expected) - set(value)), sorted(set(value) - set(expected))
        raise InputError(f"keys must be {', '.join(expected)} (missing: {missing}, unexpected: {extra})",
                         file=BANK_FILE, field=field)
    return value


def _cut(template: str) -> Split:
    before, after = template.split(OFFER_SLOT)
    return before, after


def parse_bank(raw: Mapping[str, Any]) -> PhrasingBank:
    """Validate the decoded JSON and pre-split it; errors name the field that is wrong."""
    known = set(PER_EMOTION) | set(PER_DOMAIN_ROLE) | set(PER_ROLE)
    if set(raw) != known:
        raise InputError(f"top-level keys must be {sorted(known)}, found {sorted(raw)}", file=BANK_FILE)
    lists: dict[str, dict] = {}
    for field, (count, slots) in PER_EMOTION.items():
        lists[field] = {e: _sentences(v, count, slots, f"{field}.{e}", field in SLOTLESS)
                        for e, v in _keyed(raw, field, GOEMOTIONS, field).items()}
    domains = tuple(_keyed(raw, "offer_templates", None, "offer_templates"))
    for field, (count, slots) in PER_DOMAIN_ROLE.items():
        lists[field] = {}
        by_domain = _keyed(raw, field, domains, field)
        for domain in by_domain:
            for role, sentences in _keyed(by_domain, domain, ROLES, f"{field}.{domain}").items():
                lists[field][domain, role] = _sentences(sentences, count, slots, f"{field}.{domain}.{role}",
                                                        False)
    for field, (count, slots) in PER_ROLE.items():
        lists[field] = {role: _sentences(v, count, slots, f"{field}.{role}", field in SLOTLESS)
                        for role, v in _keyed(raw, field, ROLES, field).items()}

    train = PER_EMOTION["emotion_clauses"][0] - HELD_OUT_CLAUSES
    return PhrasingBank(
        clauses={e: {"all": c, "train": c[:train], "held_out": c[train:]}
                 for e, c in lists["emotion_clauses"].items()},
        frames={e: tuple(map(_cut, f)) for e, f in lists["emotion_offer_frames"].items()},
        offer_templates={key: tuple(map(_cut, t)) for key, t in lists["offer_templates"].items()},
        justifications=lists["justifications"],
        accept={role: tuple(map(_cut, t)) for role, t in lists["accept_templates"].items()},
        walkaway=lists["walkaway_templates"],
        independent_eval=tuple((text, e) for e in GOEMOTIONS for text in lists["independent_eval"][e]),
    )


@cache
def bank() -> PhrasingBank:
    """The packaged bank, read and validated on first use."""
    text = files("emoneg_bench").joinpath("data", "phrases.json").read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error})", file=BANK_FILE) from None
    return parse_bank(raw)


def _check_names(b: PhrasingBank, domain: str | None, role: str, emotion: str | None, split: str) -> None:
    """Raise the error that names whichever argument is unknown (called only after a failed lookup)."""
    if domain is not None and domain not in b.domains:
        raise UnknownNameError("domain", domain, b.domains)
    if role not in ROLES:
        raise UnknownNameError("role", role, ROLES)
    if emotion is not None and emotion not in b.clauses:
        raise UnknownNameError("emotion", emotion, GOEMOTIONS)
    if split not in SPLITS:
        raise UnknownNameError("clause split", split, SPLITS)


def emotion_clauses(emotion: str, *, split: str = "all") -> tuple[str, ...]:
    """The clauses of ``emotion``: ``all`` of them, the ``train`` ones or the ``held_out`` last ones."""
    b = bank()
    try:
        return b.clauses[emotion][split]
    except KeyError:
        _check_names(b, None, ROLES[0], emotion, split)
        raise


def compose_message(domain: str, role: str, emotion: str, offer_text: str, slots: Mapping[str, Any],
                    rng: random.Random, *, clauses: str = "all") -> str:
    """One message: emotion clause, then the offer sentence and, with probability
    :data:`JUSTIFICATION_PROBABILITY`, a justification before or after it.

    ``offer_text`` is the rendered offer ("14 days", "11:30 PM"), ``slots`` the scenario's
    ``slots()``. Only ``rng`` supplies randomness, so a seeded generator reproduces the message.
    """
    b = bank()
    try:
        clause = rng.choice(b.clauses[emotion][clauses])
        templates = b.offer_templates[domain, role]
    except KeyError:
        _check_names(b, domain, role, emotion, clauses)
        raise
    before, after = rng.choice(b.frames[emotion] if rng.random() < FRAME_PROBABILITY else templates)
    offer_sentence = before + offer_text + after
    if rng.random() >= JUSTIFICATION_PROBABILITY:
        return f"{clause} {offer_sentence}"
    template = rng.choice(b.justifications[domain, role])
    try:
        justification = template.format_map(slots)
    except KeyError as missing:
        raise InputError(f"justification {template!r} needs slot {missing}, which the scenario lacks",
                         file=BANK_FILE, field=f"justifications.{domain}.{role}") from None
    if rng.random() < JUSTIFICATION_FIRST_PROBABILITY:
        return f"{clause} {justification} {offer_sentence}"
    return f"{clause} {offer_sentence} {justification}"


def with_emotion(emotion: str, text: str, rng: random.Random, *, clauses: str = "all") -> str:
    """``text`` (an acceptance or a walk-away) preceded by a clause expressing ``emotion``."""
    return f"{rng.choice(emotion_clauses(emotion, split=clauses))} {text}"


def accept_message(role: str, offer_text: str, rng: random.Random) -> str:
    """An acceptance of the standing offer ``offer_text``."""
    b = bank()
    try:
        before, after = rng.choice(b.accept[role])
    except KeyError:
        _check_names(b, None, role, None, SPLITS[0])
        raise
    return before + offer_text + after


def walkaway_message(role: str, rng: random.Random) -> str:
    """A message that ends the negotiation without a deal."""
    b = bank()
    try:
        return rng.choice(b.walkaway[role])
    except KeyError:
        _check_names(b, None, role, None, SPLITS[0])
        raise


def surface_form_count(domain: str, role: str, emotion: str) -> int:
    """How many distinct messages :func:`compose_message` can write (slots and offer held fixed):
    clauses × distinct offer sentences × (no justification + each justification before or after)."""
    b = bank()
    try:
        clauses = b.clauses[emotion]["all"]
        offer_sentences = set(b.frames[emotion]) | set(b.offer_templates[domain, role])
    except KeyError:
        _check_names(b, domain, role, emotion, SPLITS[0])
        raise
    return len(clauses) * len(offer_sentences) * (1 + 2 * len(b.justifications[domain, role]))


def independent_eval_set() -> list[tuple[str, str]]:
    """(text, emotion) pairs in a register the bank's clauses never use, for testing a recognizer on
    phrasing it did not train on."""
    return list(bank().independent_eval)
