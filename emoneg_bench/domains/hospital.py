"""SSD — a surgery scheduler negotiates the surgery wait (days) with a patient.

The scheduler (focal) can only offer a slot after the current waitlist: polarity ``higher``; the
patient wants surgery sooner (the junior-surgeon option shortens the wait).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from ..units import Unit
from .base import Column, ColumnKind, Domain, Polarity, Scenario, register

FOCAL_RANGE, COUNTERPARTY_RANGE = (12, 395), (1, 365)


@dataclass(frozen=True, kw_only=True)
class HospitalScenario(Scenario):
    patient_age: int
    patient_condition: str
    required_surgery: str
    urgency_level: str
    preferred_surgeon_available: str
    recommended_surgeon_experience: str
    surgeon_availability_reason: str
    risk_if_delayed: str
    patient_reason_for_urgency: str
    hospital_suggestion: str
    time_reduction_if_junior_days: int
    decision_point: str

    context_template: ClassVar[str] = (
        "A {patient_age}-year-old patient with {patient_condition_lower} needs {required_surgery_lower} "
        "(urgency: {urgency_level_lower}). The waitlist currently puts surgery {focal_anchor} days out; the "
        "patient wants it within {counterparty_anchor} days. Preferred surgeon available: "
        "{preferred_surgeon_available_lower} ({surgeon_availability_reason_lower}). Risk if delayed: "
        "{risk_if_delayed_lower}. The patient's reason: {patient_reason_for_urgency_lower}."
    )

    def slots(self) -> dict[str, Any]:
        slots = super().slots()
        for key in ("patient_condition", "required_surgery", "urgency_level", "preferred_surgeon_available",
                    "surgeon_availability_reason", "risk_if_delayed", "patient_reason_for_urgency"):
            slots[f"{key}_lower"] = str(slots[key]).lower()
        return slots


_CONDITION_SURGERY = (("Severe hip arthritis", "Hip replacement"), ("Gallstones", "Gallbladder removal"),
                      ("A torn knee ligament", "Knee reconstruction"), ("An inguinal hernia", "Hernia repair"),
                      ("Cataracts", "Cataract surgery"), ("A herniated disc", "Spinal decompression"),
                      ("Chronic sinusitis", "Sinus surgery"), ("A benign thyroid nodule", "Thyroidectomy"))
_URGENCY = ("Low", "Moderate", "High")
_EXPERIENCE = ("Senior consultant", "Mid-career surgeon", "Junior surgeon")
_AVAILABILITY = ("Fully booked for months", "On medical leave", "Prioritising emergency cases",
                 "Attending a training rotation", "Operating theatre shortage")
_RISKS = ("Worsening pain and reduced mobility", "Risk of infection", "Loss of work income",
          "Permanent joint damage", "Emergency admission")
_PATIENT_REASONS = ("Cannot work while in pain", "Caring for a young child", "Upcoming family event",
                    "Fear the condition will get worse", "Losing sleep every night")
_SUGGESTIONS = ("Accept a junior surgeon for an earlier slot", "Wait for the senior surgeon",
                "Transfer to a partner hospital", "Join the cancellation list")
_DECISIONS = ("Choose between waiting and a junior surgeon", "Confirm the booked slot",
              "Decide on the partner-hospital transfer")


def _sample_fields(rng: random.Random) -> dict[str, Any]:
    a = rng.randint(FOCAL_RANGE[0] + 8, FOCAL_RANGE[1])
    reduction = rng.randint(8, min(a - COUNTERPARTY_RANGE[0], 300))
    condition, surgery = rng.choice(_CONDITION_SURGERY)
    return dict(
        focal_anchor=a,
        counterparty_anchor=a - reduction,
        patient_age=rng.randint(18, 88),
        patient_condition=condition,
        required_surgery=surgery,
        urgency_level=rng.choice(_URGENCY),
        preferred_surgeon_available=rng.choice(("Yes", "No")),
        recommended_surgeon_experience=rng.choice(_EXPERIENCE),
        surgeon_availability_reason=rng.choice(_AVAILABILITY),
        risk_if_delayed=rng.choice(_RISKS),
        patient_reason_for_urgency=rng.choice(_PATIENT_REASONS),
        hospital_suggestion=rng.choice(_SUGGESTIONS),
        time_reduction_if_junior_days=reduction,
        decision_point=rng.choice(_DECISIONS),
    )


CSV_COLUMNS = (
    Column("Case_ID", "case_id", ColumnKind.ID),
    Column("Patient_Age", "patient_age", ColumnKind.INT),
    Column("Patient_Condition", "patient_condition", ColumnKind.TEXT),
    Column("Required_Surgery", "required_surgery", ColumnKind.TEXT),
    Column("Urgency_Level", "urgency_level", ColumnKind.CATEGORY),
    Column("Days_On_Waitlist", "days_on_waitlist", ColumnKind.INT),
    Column("Preferred_Surgeon_Available", "preferred_surgeon_available", ColumnKind.CATEGORY),
    Column("Recommended_Surgeon_Experience_Level", "recommended_surgeon_experience", ColumnKind.CATEGORY),
    Column("Surgeon_Availability_Reason", "surgeon_availability_reason", ColumnKind.TEXT),
    Column("Risk_If_Delayed", "risk_if_delayed", ColumnKind.TEXT),
    Column("Patient_Reason_For_Urgency", "patient_reason_for_urgency", ColumnKind.TEXT),
    Column("Hospital_Suggestion", "hospital_suggestion", ColumnKind.TEXT),
    Column("Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)", "time_reduction_if_junior_days",
           ColumnKind.INT),
    Column("Decision_Point", "decision_point", ColumnKind.TEXT),
)


def _anchors_from_csv(row: dict[str, Any]) -> tuple[int, int]:
    waitlist = row.pop("days_on_waitlist")
    return waitlist, waitlist - row["time_reduction_if_junior_days"]


HOSPITAL = register(Domain(
    id="hospital",
    paper_name="SSD",
    issue="surgery wait",
    unit=Unit.DAYS,
    polarity=Polarity.HIGHER,
    tolerance=2,
    focal_role="surgery scheduler",
    counterparty_role="patient",
    focal_anchor_range=FOCAL_RANGE,
    counterparty_anchor_range=COUNTERPARTY_RANGE,
    offer_bounds=(0, 730),
    scenario_type=HospitalScenario,
    sample_fields=_sample_fields,
    focal_prompt=(
        "You schedule surgeries for a busy hospital and are agreeing a surgery date with a patient. {context} "
        "The theatre schedule is full: you can honestly offer {focal_anchor_text} from now. Every message must "
        "state the wait you propose, in days."
    ),
    counterparty_prompt=(
        "You are a patient waiting for surgery and are negotiating the date with the hospital scheduler. "
        "{context} You want it as soon as possible: ideally within {counterparty_anchor_text}. Every message "
        "must state the wait you ask for, in days."
    ),
    csv_columns=CSV_COLUMNS,
    anchors_from_csv=_anchors_from_csv,
))
