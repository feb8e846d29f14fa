"""Units of the negotiated issue and the clock conversion used by the bedtime domain.

A bedtime is stored as **minutes past 9 PM** everywhere (data, prompts, parser, tolerance):
9 PM is 0, midnight is 180, 1:15 AM is 255. Clock times from 6 PM to 11:59 AM map to −180…899.
"""

from __future__ import annotations

from enum import StrEnum


class Unit(StrEnum):
    DAYS = "days"
    MINUTES = "minutes"
    BEDTIME = "minutes past 9 PM"


def clock_to_minutes_past_9pm(hour: int, minute: int, meridiem: str) -> int:
    """Convert a 12-hour clock time to minutes past 9 PM (6 PM → −180, 9 PM → 0, 8:30 AM → 690)."""
    if not (1 <= hour <= 12 and 0 <= minute <= 59) or meridiem.upper() not in ("AM", "PM"):
        raise ValueError(f"not a 12-hour clock time: {hour}:{minute:02d} {meridiem}")
    hour24 = hour % 12 + (12 if meridiem.upper() == "PM" else 0)
    minutes = hour24 * 60 + minute - 21 * 60
    return minutes if minutes >= -180 else minutes + 24 * 60


def minutes_past_9pm_to_clock(minutes: int) -> str:
    """Render minutes past 9 PM as a clock time: 0 → '9:00 PM', 255 → '1:15 AM'."""
    total = (21 * 60 + round(minutes)) % (24 * 60)
    hour24, minute = divmod(total, 60)
    meridiem = "AM" if hour24 < 12 else "PM"
    return f"{(hour24 % 12) or 12}:{minute:02d} {meridiem}"


OFFER_STEP = {Unit.DAYS: 1, Unit.MINUTES: 1, Unit.BEDTIME: 5}


def round_offer(value: float, unit: Unit) -> int:
    """Round an offer to the unit's natural step (whole days or minutes, bedtimes to 5 minutes)."""
    step = OFFER_STEP[unit]
    return int(step * round(value / step))
