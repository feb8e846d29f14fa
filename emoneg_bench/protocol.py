"""The action protocols a language-model negotiator speaks.

``structured`` (the default for LM agents): every turn is one JSON object, act and value first, then the
message the other side reads::

    {"act": "offer", "offer": 21, "message": "I can't wait any longer: 21 days is my limit."}

The persona reads ``act`` and ``offer`` (the structured channel); the recognizer reads ``message``. The
schema bounds everything a small model can get wrong: ``act`` is one of three words, ``offer`` an integer
between the two anchors in the domain's unit, ``message`` at most :data:`MESSAGE_CHARS` characters, and no
free whitespace. Locally the schema is enforced while decoding (a grammar engine); over HTTP it goes in
``response_format``. A reply that still fails it is an **invalid move**: recorded with offer status
``invalid`` and counted toward the engine's ``breakdown`` rule like an unreadable offer.

``text``: free text whose offer the unit-aware parser reads, as the peers' conventions do (kept for
comparison).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .domains.base import Domain, Scenario
from .negotiation import Act
from .units import Unit

PROTOCOLS = ("structured", "text")
DEFAULT_PROTOCOL = "structured"
MESSAGE_CHARS = 160  # longest message: ~95th percentile of the teacher's messages, ~35 tokens
INVALID = "invalid"  # offer_status of a reply that fails the schema
ACTS = (str(Act.OFFER), str(Act.ACCEPT), str(Act.WALKAWAY))
_UNIT_HELP = {Unit.DAYS: "a whole number of days", Unit.MINUTES: "a whole number of minutes",
              Unit.BEDTIME: "minutes past 9 PM (0 = 9:00 PM, 60 = 10:00 PM, 180 = midnight, 240 = 1:00 AM)"}


def check_protocol(protocol: str) -> str:
    from .errors import InputError

    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}", field="protocol")
    return protocol


def offer_range(scenario: Scenario) -> tuple[int, int]:
    """The integers an offer may take: the span between the two anchors (no offer outside it can help)."""
    low, high = sorted((round(scenario.focal_anchor), round(scenario.counterparty_anchor)))
    return low, high


def action_schema(scenario: Scenario) -> dict:
    """The JSON schema of one move in ``scenario``: keys in this order, every key required."""
    low, high = offer_range(scenario)
    return {
        "type": "object",
        "properties": {
            "act": {"type": "string", "enum": list(ACTS)},
            "offer": {"type": "integer", "minimum": low, "maximum": high},
            "message": {"type": "string", "minLength": 1, "maxLength": MESSAGE_CHARS},
        },
        "required": ["act", "offer", "message"],
        "additionalProperties": False,
    }


def format_instructions(domain: Domain, scenario: Scenario, role: str = "focal", *, own_first: bool = True,
                        named: bool = True) -> str:
    """What the model is told about the format (part of the system prompt). By default the offer's range is
    stated from the speaker's own ideal to the other side's: SmolLM2 copies the first number it is shown, and
    "from 182 to 449" (``own_first=False``) made it open at the other side's anchor in every disaster task
    (utility 0 at once). By default the message is named (``M``), not shown as a placeholder (``named=False``:
    ``"..."``), which it copied verbatim into many replies. ``scripts/choose_prompt_wording.py`` compares the four
    wordings on validation."""
    if own_first:
        own, other = ((scenario.focal_anchor, scenario.counterparty_anchor) if str(role) == "focal"
                      else (scenario.counterparty_anchor, scenario.focal_anchor))
        span = f"between {round(own)} (your ideal) and {round(other)} (theirs)"
    else:
        low, high = offer_range(scenario)
        span = f"from {low} to {high}"
    shape, message = (("M", f"M is what you say to them in your own words, a quoted string of at most {MESSAGE_CHARS} "
                            "characters.") if named else
                      ('"..."', f'"message" is what you say to them, at most {MESSAGE_CHARS} characters.'))
    return (f'Answer every turn with one JSON object and nothing else: {{"act": "offer", "offer": N, "message": '
            f'{shape}}}. "act" is "offer" to propose N, "accept" to take the other side\'s latest offer, or '
            f'"walkaway" to end the talks without a deal. N is {_UNIT_HELP[domain.unit]}, {span}. {message}')


@dataclass(frozen=True)
class Action:
    act: Act
    offer: int
    message: str


def render_action(act: Act | str, offer: float | None, message: str) -> str:
    """A move as the JSON the model writes (the grammar's separators; non-ASCII kept)."""
    return json.dumps({"act": str(act), "offer": None if offer is None else int(round(offer)), "message": message},
                      ensure_ascii=False)


def parse_action(text: str, scenario: Scenario) -> Action | str:
    """The move in a reply, or one sentence saying why it is invalid."""
    try:
        value = json.loads(text)
    except ValueError:
        return f"not a JSON object: {text[:60]!r}"
    if not isinstance(value, dict) or set(value) != {"act", "offer", "message"}:
        return f"expected exactly the keys act, offer and message, got {text[:60]!r}"
    act, offer, message = value["act"], value["offer"], value["message"]
    low, high = offer_range(scenario)
    if act not in ACTS:
        return f"act must be one of {', '.join(ACTS)}, got {act!r}"
    if isinstance(offer, bool) or not isinstance(offer, int) or not low <= offer <= high:
        return f"offer must be an integer from {low} to {high}, got {offer!r}"
    if not isinstance(message, str) or not 1 <= len(message) <= MESSAGE_CHARS:
        return f"message must be a string of 1 to {MESSAGE_CHARS} characters"
    return Action(Act(act), offer, message)


def fit_message(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters at the last sentence (else word) boundary that fits, for training
    targets written by agents without the limit (the teacher)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [i + 1 for i, c in enumerate(head) if c in ".!?" and (i + 1 == len(head) or head[i + 1] == " ")]
    if ends and ends[-1] >= limit // 3:
        return head[: ends[-1]]
    return head.rsplit(" ", 1)[0] if " " in head else head
