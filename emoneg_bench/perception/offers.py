"""Deterministic, unit-aware offer parser: read the offered quantity from a negotiation message.

Grammar (case-insensitive; NUMBER is digits such as ``14``, ``1.5`` or ``1,000``, a word number
``zero`` … ``ninety-nine``, ``a``/``an``, ``a couple (of)`` = 2, or a fraction ``half (an)``,
``(a) quarter (of an)``, ``three quarters (of an)``; ``NUMBER and a half`` adds 0.5):

- DAYS: ``NUMBER[-]UNIT`` with UNIT day (1; ``business``/``working`` days count as calendar
  days), week (7), fortnight (14), month (30), year (365); ``d``/``wk``/``mo``/``yr`` only after
  digits. Adjacent terms in decreasing unit, joined by nothing, ``,`` or ``and``, add up:
  ``3 weeks and 2 days`` → 23.
- MINUTES: the same with hour (60) and minute (1), plus ``1h30``, ``1h 30m``,
  ``an hour and a half`` → 90, ``quarter of an hour`` → 15.
- BEDTIME (minutes past 9 PM): ``11:30 PM``, ``11.30 p.m.``, ``11 pm``, ``11 o'clock``,
  ``midnight`` (180), ``noon`` (900), 24-hour ``23:30`` / ``00:30`` (a leading zero or an hour
  ≥ 13 marks 24-hour time), ``half past eleven``, ``quarter to one``, ``ten past eleven`` and
  ``DURATION past|after|to|before CLOCK`` (``90 minutes past 9 PM`` → 90). Without am/pm the
  night reading holds: 6–11 are PM, 12 and 1–5 are AM.

Not offers: bare numbers (``at 11``), money (``$15,700``, ``15,700 USD``), percentages, dates,
``a few``/``several``, and ``a``/``an`` after a rate or price (``twice a week``, ``$15 a day``).

Disambiguation: if every quantity found has the same value, that is the offer. Otherwise each
offer cue claims the first quantity after it in its own sentence (``[.!?;]`` or a newline ends a
sentence); later quantities are usually reasons (``I propose 14 days, since 30 days is too
long``). Strong cues (``STRONG_CUES``: offer, propose, suggest, agree, accept, settle, counter,
commit, can do, let's say, how about, …) are tried first, weak cues (``WEAK_CUES``: within, by,
until, till, no later than) only when no strong cue claims anything; one claimed value → OK,
several or none → AMBIGUOUS. A cue does not count when negated (``I can't accept``) or said of
the other side (``your offer``, ``you proposed``; ``would you accept`` still counts).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from ..units import Unit, clock_to_minutes_past_9pm, minutes_past_9pm_to_clock


class OfferStatus(StrEnum):
    OK = "ok"
    NO_OFFER = "no_offer"
    AMBIGUOUS = "ambiguous"
    OUT_OF_RANGE = "out_of_range"
    STRUCTURED = "structured"  # set by the engine when an agent sent its offer as structured data


@dataclass(frozen=True)
class ParsedOffer:
    """An offer read from text: ``value`` is in the domain's unit and set only for OK/OUT_OF_RANGE."""

    value: float | None
    status: OfferStatus
    span: tuple[int, int] | None = None


def format_offer(value: float, unit: Unit) -> str:
    """Render an offer the way ``parse_offer`` reads it back: '14 days', '90 minutes', '11:30 PM'."""
    if unit is Unit.BEDTIME:
        return minutes_past_9pm_to_clock(round(value))
    count = round(value)
    name = "day" if unit is Unit.DAYS else "minute"
    return f"{count} {name}" if count == 1 else f"{count} {name}s"


# ---------------------------------------------------------------------------------- number words
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_WORD_VALUES = {word: i for i, word in enumerate(_ONES)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_WORD_NUMBER = (rf"(?:(?:{'|'.join(_TENS)})(?:(?:-|\s{{1,3}})(?:{'|'.join(_ONES[1:10])}))?"
                rf"|{'|'.join(sorted(_ONES, key=len, reverse=True))})\b")
_WORD_NUMBER_RE = re.compile(_WORD_NUMBER, re.I | re.A)
_HOUR_WORD = rf"(?:{'|'.join(sorted(_ONES[1:13], key=len, reverse=True))})\b"
_FRACTION = (r"(?:half(?:\s{1,3}(?:of\s{1,3})?an?)?|a\s{1,3}half|three\s{1,3}quarters(?:\s{1,3}of\s{1,3}an?)?"
             r"|(?:a\s{1,3})?quarter(?:\s{1,3}of\s{1,3}an?)?)")
_DIGITS = r"(?:\d{1,3}(?:,\d{3}){1,2}|\d{1,6})(?:\.\d{1,3})?"
_NUMBER = (rf"(?:{_DIGITS}|{_WORD_NUMBER}|{_FRACTION}|a\s{{1,3}}couple(?:\s{{1,3}}of)?|couple\s{{1,3}}of|an?)"
           r"(?:\s{1,3}and\s{1,3}a\s{1,3}half)?")
_AND_A_HALF = r"(?P<half>\s{1,3}and\s{1,3}a\s{1,3}half\b)?"
_STARTERS = frozenset(_WORD_VALUES) | {"a", "an", "half", "quarter", "couple", "midnight", "noon", "midday"}


def _compile(pattern: str) -> re.Pattern[str]:
    """Anchor ``pattern`` where a quantity can start.

    Money and identifiers glue to their digits, so a quantity never starts right after a word
    character, currency sign or separator; the first-letter check lets the engine skip most
    positions cheaply (a 30-word message parses in tens of microseconds).
    """
    prefixes = sorted({word[:2] if len(word) > 2 else rf"{word}\b" for word in _STARTERS})
    return re.compile(rf"(?<![\w$€£.,:])(?=\d|{'|'.join(prefixes)})(?:{pattern})", re.I | re.A)


def _number_value(text: str) -> float:
    words = " ".join(text.lower().split())
    extra = 0.5 if words.endswith(" and a half") else 0.0
    words = words.removesuffix(" and a half")
    if words[0].isdigit():
        return float(words.replace(",", "")) + extra
    if "three quarters" in words:
        return 0.75 + extra
    if "quarter" in words:
        return 0.25 + extra
    if "half" in words:
        return 0.5 + extra
    if "couple" in words:
        return 2 + extra
    if words in ("a", "an"):
        return 1 + extra
    return sum(_WORD_VALUES[w] for w in re.split(r"[-\s]+", words)) + extra


# ---------------------------------------------------------------------------------- durations
_DAY_UNITS = (r"(?:(?:business|working|calendar|work)\s{1,3})?(?:days?|d)|weeks?|wks?|fortnights?"
              r"|months?|mos?|years?|yrs?")
_MINUTE_UNITS = r"hours?|hrs?|h|minutes?|mins?|m"
_MULTIPLIERS = {  # by the unit word's first letters
    Unit.DAYS: (("f", 14.0), ("w", 7.0), ("m", 30.0), ("y", 365.0), ("d", 1.0)),
    Unit.MINUTES: (("h", 60.0), ("m", 1.0)),
}


def _term(units: str) -> str:
    # Digits may touch their unit ("14days"); words may not, or "Amos" would read as "a mos".
    return rf"(?P<num>{_NUMBER})(?:(?<=\d)|(?=[\s-]))\s{{0,3}}-?\s{{0,3}}(?P<unit>{units})\b{_AND_A_HALF}"


_HOURS_MINUTES = r"(?P<hh>\d{1,2})\s{0,2}h\s{0,2}(?P<mm>[0-5]\d)(?:\s{0,2}m(?:in(?:ute)?s?)?)?\b"
_DURATION_RES = {
    Unit.DAYS: _compile(_term(_DAY_UNITS)),
    Unit.MINUTES: _compile(f"{_HOURS_MINUTES}|{_term(_MINUTE_UNITS)}"),
}
_COMPOUND_JOIN = re.compile(r"\s{0,3},?\s{0,3}(?:(?:and|plus|&)\s{1,3})?", re.I | re.A)


def _plain(pattern: str) -> str:
    """The pattern without named groups, to embed it inside another pattern."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# ---------------------------------------------------------------------------------- clock times
def _meridiem(name: str) -> str:
    return rf"(?P<{name}>[ap])\.?m\b\.?"


_HOUR = rf"(?:\d{{1,2}}|{_HOUR_WORD})"
_OCLOCK = r"o['’]?\s?clock\b"
_CLOCK = (rf"(?:(?P<h1>\d{{1,2}})[:.](?P<m1>[0-5]\d)\s{{0,3}}{_meridiem('mer1')}"
          rf"|(?P<h2>\d{{1,2}}):(?P<m2>[0-5]\d)(?!\d)"
          rf"|(?P<h3>{_HOUR})(?:\s{{0,3}}{_OCLOCK})?\s{{0,3}}{_meridiem('mer3')}"
          rf"|(?P<h4>{_HOUR})\s{{0,3}}{_OCLOCK}"
          rf"|(?P<special>midnight|noon|midday)\b)")
# A bare hour is a clock only as the target of "past"/"to"; "two to three hours" is not one.
_BARE_HOUR = rf"(?P<h5>{_HOUR})(?!\s{{0,3}}(?:hours?|hrs?|minutes?|mins?|days?|nights?|weeks?|times)\b)"
_CLOCK_OR_HOUR_RE = re.compile(f"{_CLOCK}|{_BARE_HOUR}", re.I | re.A)
_MINUTE_DURATION = _plain(rf"(?:{_HOURS_MINUTES}|{_term(_MINUTE_UNITS)}(?:\s{{0,3}},?\s{{0,3}}(?:and\s{{1,3}})?"
                          rf"{_term(_MINUTE_UNITS)})?)")
# Digits before "to" are usually a range ("10 to 11 pm"), so only words may count down to an hour.
_RELATIVE = (rf"(?<!\bfrom\s)(?P<offset>{_MINUTE_DURATION}|half|(?:a\s{{1,3}})?quarter|three\s{{1,3}}quarters"
             rf"|{_WORD_NUMBER}|\d{{1,2}}(?=\s{{1,3}}past\b))\s{{1,3}}(?P<dir>past|after|to|before|till|til)\s{{1,3}}"
             rf"(?P<target>{_plain(_CLOCK)}|{_plain(_BARE_HOUR)})")
_BEDTIME_RE = _compile(f"{_RELATIVE}|{_CLOCK}")


def _clock_value(match: re.Match[str]) -> float | None:
    """Minutes past 9 PM of a ``_CLOCK``/``_BARE_HOUR`` match, or None for an impossible time."""
    g = match.groupdict()
    if g.get("special"):
        return 180.0 if g["special"].lower() == "midnight" else 900.0
    if g.get("h2"):
        hour, minute = int(g["h2"]), int(g["m2"])
        if hour == 0 or hour >= 13 or g["h2"].startswith("0"):
            if hour > 23:
                return None
            return float(clock_to_minutes_past_9pm(hour % 12 or 12, minute, "PM" if hour >= 12 else "AM"))
        return _twelve_hour(g["h2"], minute, None)
    for hour_group, minute_group, meridiem_group in (("h1", "m1", "mer1"), ("h3", None, "mer3"),
                                                     ("h4", None, None), ("h5", None, None)):
        if g.get(hour_group):
            minute = int(g[minute_group]) if minute_group else 0
            return _twelve_hour(g[hour_group], minute, g.get(meridiem_group) if meridiem_group else None)
    return None


def _twelve_hour(hour_text: str, minute: int, meridiem: str | None) -> float | None:
    hour = int(hour_text) if hour_text.isdigit() else _WORD_VALUES[hour_text.lower()]
    if meridiem is None:  # the night reading: a bedtime is in the evening or the small hours
        meridiem = "p" if 6 <= hour <= 11 else "a"
    try:
        return float(clock_to_minutes_past_9pm(hour, minute, meridiem.upper() + "M"))
    except ValueError:
        return None


def _offset_minutes(text: str) -> float:
    words = " ".join(text.lower().split())
    if words in ("half", "quarter", "a quarter", "three quarters"):
        return {"half": 30.0, "three quarters": 45.0}.get(words, 15.0)
    if words.isdigit() or _WORD_NUMBER_RE.fullmatch(words):
        return _number_value(words)
    return sum(q.value for q in _quantities(text, Unit.MINUTES))


# ---------------------------------------------------------------------------------- extraction
class _Quantity(NamedTuple):
    value: float
    start: int
    end: int
    multiplier: float = 0.0  # of the smallest unit in it, so a compound only grows downwards


# "a"/"an" after these is a rate or a price ("twice a week", "$15 a day"), not one unit.
_RATE_BEFORE = re.compile(r"(?:[$€£]\s?[\d,.]+|\d\s?(?:usd|eur|gbp|dollars?|euros?|pounds?|bucks)"
                          r"|\b(?:once|twice|thrice|times|per|every|each))\s{1,3}$", re.I | re.A)


def _quantities(text: str, unit: Unit) -> list[_Quantity]:
    if unit is Unit.BEDTIME:
        return [q for m in _BEDTIME_RE.finditer(text) if (q := _bedtime(m)) is not None]
    found: list[_Quantity] = []
    for m in _DURATION_RES[unit].finditer(text):
        if m.groupdict().get("hh"):
            q = _Quantity(60.0 * int(m["hh"]) + int(m["mm"]), m.start(), m.end(), 1.0)
        else:
            number, unit_word = m["num"], m["unit"].split()[-1].lower()
            if len(unit_word) <= 2 and not number[0].isdigit():
                continue  # "d", "h", "m", "wk" abbreviate units only after digits
            if number.lower() in ("a", "an") and _RATE_BEFORE.search(text, max(0, m.start() - 30), m.start()):
                continue
            multiplier = next(f for prefix, f in _MULTIPLIERS[unit] if unit_word.startswith(prefix))
            amount = _number_value(number) + (0.5 if m["half"] else 0.0)
            q = _Quantity(amount * multiplier, m.start(), m.end(), multiplier)
        previous = found[-1] if found else None
        if (previous and q.multiplier < previous.multiplier
                and _COMPOUND_JOIN.fullmatch(text, previous.end, q.start)):
            q = _Quantity(previous.value + q.value, previous.start, q.end, q.multiplier)
            found.pop()
        found.append(q)
    return found


def _bedtime(m: re.Match[str]) -> _Quantity | None:
    if m["target"] is None:
        value = _clock_value(m)
    else:
        target = _CLOCK_OR_HOUR_RE.fullmatch(m["target"])
        value = _clock_value(target) if target else None
        if value is not None:
            sign = 1 if m["dir"].lower() in ("past", "after") else -1
            value += sign * _offset_minutes(m["offset"])
    return None if value is None else _Quantity(value, m.start(), m.end())


# ---------------------------------------------------------------------------------- offer cues
STRONG_CUES = (r"offer(?:s|ed|ing)?", r"counter(?:-?offer)?", r"propos(?:e|es|ed|ing|al)",
               r"suggest(?:s|ed|ing|ion)?", r"agree(?:s|d)?", r"accept(?:s|ed)?", r"settle(?:s|d)?",
               r"commit(?:s|ted)?", r"can\s+do", r"could\s+do", r"give\s+you", r"let['’]?s\s+say",
               r"let\s+us\s+say", r"how\s+about", r"what\s+about", r"go\s+with", r"meet\s+(?:you\s+)?at")
WEAK_CUES = (r"within", r"by", r"until", r"till", r"no\s+later\s+than")


def _cue_pattern(cues: tuple[str, ...]) -> re.Pattern[str]:
    first_letters = "".join(sorted({cue[0] for cue in cues}))  # lets the engine skip other words fast
    return re.compile(rf"\b(?=[{first_letters}])(?:{'|'.join(cues)})\b", re.I | re.A)


_STRONG_CUES, _WEAK_CUES = _cue_pattern(STRONG_CUES), _cue_pattern(WEAK_CUES)
_NEGATED = re.compile(r"\b(?:not|never|cannot|no\s+way|\w+n['’]t)\s+(?:[\w'’]+\s+){0,3}$", re.I | re.A)
_OTHER_SIDE = re.compile(r"\b(?:you|your|they|their|he|she|his|her)\s+(?:(?!i\b|we\b)[\w'’]+\s+)?$", re.I | re.A)
_ASKING = re.compile(r"\b(?:would|could|can|will|do|did|might|if)\s+you\s+(?:[\w'’]+\s+)?$", re.I | re.A)
_SENTENCE_END = re.compile(r"[.!?;\n](?=\s|$)")


def _claimed(text: str, quantities: list[_Quantity], cues: re.Pattern[str], ends: list[int]) -> list[_Quantity]:
    """The first quantity after each valid cue, within the cue's sentence, in text order."""
    starts = [q.start for q in quantities]
    claimed: dict[int, _Quantity] = {}
    for cue in cues.finditer(text):
        i = bisect_left(starts, cue.end())
        if i == len(quantities):
            break
        q = quantities[i]
        e = bisect_left(ends, cue.end())
        if e < len(ends) and ends[e] < q.start:
            continue
        before = text[max(0, cue.start() - 40):cue.start()]
        if _NEGATED.search(before) or (_OTHER_SIDE.search(before) and not _ASKING.search(before)):
            continue
        claimed[i] = q
    return [claimed[i] for i in sorted(claimed)]


def _choose(text: str, quantities: list[_Quantity]) -> _Quantity | None:
    if len({q.value for q in quantities}) == 1:
        return quantities[0]
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    for cues in (_STRONG_CUES, _WEAK_CUES):
        claimed = _claimed(text, quantities, cues, ends)
        if claimed:
            return claimed[0] if len({q.value for q in claimed}) == 1 else None
    return None


def parse_offer(text: str, unit: Unit, bounds: tuple[float, float] | None = None) -> ParsedOffer:
    """Read the offered quantity in ``unit`` from ``text`` (grammar and rule in the module docstring).

    ``bounds`` is inclusive; a value outside it comes back with status OUT_OF_RANGE.
    """
    quantities = _quantities(text, unit)
    if not quantities:
        return ParsedOffer(None, OfferStatus.NO_OFFER)
    chosen = _choose(text, quantities)
    if chosen is None:
        return ParsedOffer(None, OfferStatus.AMBIGUOUS)
    span = (chosen.start, chosen.end)
    if bounds is not None and not bounds[0] <= chosen.value <= bounds[1]:
        return ParsedOffer(chosen.value, OfferStatus.OUT_OF_RANGE, span)
    return ParsedOffer(chosen.value, OfferStatus.OK, span)
