"""How a language-model negotiator sees a negotiation: compact, prefix-stable chat prompts.

What never changes in an episode comes first (one system message: role, scenario, rules, the reply format),
then the transcript as chat turns (the other side's messages as ``user`` turns, one's own as ``assistant``
turns), and each ``user`` turn ends with that turn's instruction (the uniform emotion instruction when
emotion-conditioned, then what to write). So the prompt of turn t+1 is the prompt of turn t plus the reply and
the other side's answer: a server or a local KV cache reuses everything before.

The transcript is bounded: it shows the messages since the start of the current **window**, a block of
:data:`WINDOW` own turns (at least ``WINDOW`` and fewer than ``2·WINDOW`` of one's own past turns once there
are that many), with the earlier offers of both sides summarised in one line at the window's start. The window
moves only every ``WINDOW`` own turns, so the prefix stays stable in between; a 30-message episode's prompt
stays a few hundred tokens.

The SFT config of a release is written with exactly these messages, so a model trained on a release is
prompted the same way when it plays.
"""

from __future__ import annotations

from collections.abc import Sequence

from .domains.base import Domain, Scenario
from .emotions import emotion_instruction
from .negotiation import Role, Utterance
from .perception.offers import format_offer
from .protocol import DEFAULT_PROTOCOL, INVALID, fit_message, format_instructions, render_action
from .units import Unit

WINDOW = 2  # own turns per transcript window (3 made the default release's SFT rows 798 tokens on average)
_OFFER_HINT = {Unit.DAYS: "a number of days", Unit.MINUTES: "a number of minutes", Unit.BEDTIME: "a clock time"}
_READABLE = ("ok", "structured")


def window_start(own_turns_before: int, window: int = WINDOW) -> int:
    """Index (among one's own turns) of the first own turn shown verbatim when ``own_turns_before`` own turns
    have been made: ``window·⌊max(0, n − window)/window⌋``."""
    return window * (max(0, own_turns_before - window) // window)


def negotiator_messages(domain: Domain, role: Role, scenario: Scenario, history: Sequence[Utterance],
                        emotion: str | None, protocol: str = DEFAULT_PROTOCOL,
                        window: int = WINDOW) -> list[dict[str, str]]:
    """The chat ``role`` sees before its next message (``emotion``: the instruction for this turn; None for an
    emotion-free negotiator). Past own turns carry the emotions they were declared with."""
    names = {Role.FOCAL: domain.focal_role, Role.COUNTERPARTY: domain.counterparty_role}
    own = [i for i, u in enumerate(history) if u.role is role]
    start = window_start(len(own), window)
    shown_from = 0 if start == 0 else own[start] - (1 if own[start] > 0 else 0)
    system = f"{domain.system_prompt(str(role), scenario)} {_rules(domain, scenario, role, protocol)}"
    messages = [{"role": "system", "content": system}]
    pending = [_summary(history[:shown_from], role, names, domain)] if shown_from else []
    for u in history[shown_from:]:
        if u.role is not role:
            pending.append(f"{names[u.role].capitalize()}: {u.text}")
            continue
        pending.append(_instruction(u.declared_emotion, u.turn == 0, domain, scenario, role, protocol))
        messages += [{"role": "user", "content": "\n".join(pending)},
                     {"role": "assistant", "content": _own_message(u, protocol)}]
        pending = []
    pending.append(_instruction(emotion, not history, domain, scenario, role, protocol))
    messages.append({"role": "user", "content": "\n".join(pending)})
    return messages


def reply_content(utterance: Utterance, protocol: str = DEFAULT_PROTOCOL) -> str:
    """What a model writes for ``utterance`` under ``protocol`` (the assistant turn of an SFT example)."""
    return _own_message(utterance, protocol)


def _rules(domain: Domain, scenario: Scenario, role: Role, protocol: str) -> str:
    if protocol == "structured":
        return format_instructions(domain, scenario, str(role))
    return (f"Answer every turn in one or two sentences that state your offer as {_OFFER_HINT[domain.unit]}; "
            "say that you accept to take the other side's offer.")


def _instruction(emotion: str | None, opening: bool, domain: Domain, scenario: Scenario, role: Role,
                 protocol: str) -> str:
    parts = [emotion_instruction(emotion)] if emotion is not None else []
    if protocol == "structured":
        parts.append("You speak first: your opening move." if opening else "Your move.")
    else:
        own_anchor = scenario.focal_anchor if role is Role.FOCAL else scenario.counterparty_anchor
        # Small models follow a concrete example of the format far more reliably than a description of it
        # (SmolLM2-135M: 7 of 12 opening offers readable with the example, 0 of 12 without).
        example = f'(like "I propose {format_offer(own_anchor, domain.unit)}.")'
        parts.append(f"You speak first: make your opening offer {example}." if opening
                     else f"Reply with your next offer {example}.")
    return " ".join(parts)


def _own_message(u: Utterance, protocol: str) -> str:
    if protocol != "structured" or u.offer_status == INVALID:
        return u.text
    return render_action(u.act, u.offer, fit_message(u.text))


def _summary(earlier: Sequence[Utterance], role: Role, names: dict[Role, str], domain: Domain) -> str:
    """One line with both sides' readable offers before the window, oldest first."""
    def offers(side: Role) -> str:
        stated = [format_offer(u.offer, domain.unit) for u in earlier
                  if u.role is side and u.offer is not None and u.offer_status in _READABLE]
        return ", ".join(stated) if stated else "none"
    return f"Earlier offers: you {offers(role)}; the {names[role.other]} {offers(role.other)}."
