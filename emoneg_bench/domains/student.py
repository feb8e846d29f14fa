"""SSAD — a sleep-health assistant negotiates a bedtime with a student.

Bedtimes are minutes past 9 PM end to end (data, prompts, parser, tolerance). The assistant (focal)
wants an earlier bedtime: polarity ``lower``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from ..units import Unit, minutes_past_9pm_to_clock
from .base import Column, ColumnKind, Domain, Polarity, Scenario, register, sample_anchors

FOCAL_RANGE, COUNTERPARTY_RANGE = (0, 360), (180, 540)


@dataclass(frozen=True, kw_only=True)
class StudentScenario(Scenario):
    student_age: int
    student_background: str
    situation_faced: str
    student_feeling: str
    primary_annoyance_reason: str

    context_template: ClassVar[str] = (
        "A {student_age}-year-old {student_background_lower} is dealing with {situation_faced_lower} and "
        "feels that {student_feeling_lower}. The assistant recommends bed by {focal_clock}; the student wants "
        "to stay up until {counterparty_clock}. What annoys the student most: {primary_annoyance_reason_lower}."
    )

    def slots(self) -> dict[str, Any]:
        slots = super().slots()
        slots["focal_clock"] = minutes_past_9pm_to_clock(self.focal_anchor)
        slots["counterparty_clock"] = minutes_past_9pm_to_clock(self.counterparty_anchor)
        for key in ("student_background", "situation_faced", "student_feeling", "primary_annoyance_reason"):
            slots[f"{key}_lower"] = str(slots[key]).lower()
        return slots


_BACKGROUNDS = ("High-school senior", "First-year university student", "Graduate student",
                "Part-time working student", "Exchange student", "Student athlete")
_SITUATIONS = ("Exams next week", "A group project deadline", "An online gaming tournament",
               "A part-time night shift", "A new social media habit", "A thesis chapter due")
_FEELINGS = ("Sleep is wasted time", "Everyone else stays up later", "Nights are the only quiet time to work",
             "The assistant is being overprotective", "One late night will not hurt")
_ANNOYANCES = ("Being told what to do", "Losing time with friends", "Feeling treated like a child",
               "Falling behind on coursework", "Missing the best hours to focus")


def _sample_fields(rng: random.Random) -> dict[str, Any]:
    a, b = sample_anchors(rng, Polarity.LOWER, FOCAL_RANGE, COUNTERPARTY_RANGE, min_gap=60)
    a, b = 15 * round(a / 15), 15 * round(b / 15)  # people name bedtimes on the quarter hour
    return dict(
        focal_anchor=a,
        counterparty_anchor=b,
        student_age=rng.randint(15, 30),
        student_background=rng.choice(_BACKGROUNDS),
        situation_faced=rng.choice(_SITUATIONS),
        student_feeling=rng.choice(_FEELINGS),
        primary_annoyance_reason=rng.choice(_ANNOYANCES),
    )


CSV_COLUMNS = (
    Column("Case_ID", "case_id", ColumnKind.ID),
    Column("Student_Age", "student_age", ColumnKind.INT),
    Column("Student_Background", "student_background", ColumnKind.TEXT),
    Column("Situation_Faced", "situation_faced", ColumnKind.TEXT),
    Column("Student_Feeling_Thought", "student_feeling", ColumnKind.TEXT),
    Column("Robots_Requested_Bedtime", "robot_requested_bedtime", ColumnKind.CLOCK),
    Column("Student_Wanted_Bedtime", "student_wanted_bedtime", ColumnKind.CLOCK),
    Column("Primary_Annoyance_Reason", "primary_annoyance_reason", ColumnKind.TEXT),
)


def _anchors_from_csv(row: dict[str, Any]) -> tuple[int, int]:
    return row.pop("robot_requested_bedtime"), row.pop("student_wanted_bedtime")


STUDENT = register(Domain(
    id="student",
    paper_name="SSAD",
    issue="bedtime",
    unit=Unit.BEDTIME,
    polarity=Polarity.LOWER,
    tolerance=15,
    focal_role="sleep-health assistant",
    counterparty_role="student",
    focal_anchor_range=FOCAL_RANGE,
    counterparty_anchor_range=COUNTERPARTY_RANGE,
    offer_bounds=(-180, 720),
    scenario_type=StudentScenario,
    sample_fields=_sample_fields,
    focal_prompt=(
        "You are a sleep-health assistant agreeing on tonight's bedtime with a student. {context} You want "
        "the student in bed as early as possible: ideally by {focal_anchor_text}. Every message must state the "
        "bedtime you propose as a clock time."
    ),
    counterparty_prompt=(
        "You are a student negotiating tonight's bedtime with your sleep-health assistant. {context} You want "
        "to stay up as late as possible: ideally until {counterparty_anchor_text}. Every message must state "
        "the bedtime you propose as a clock time."
    ),
    csv_columns=CSV_COLUMNS,
    anchors_from_csv=_anchors_from_csv,
))
