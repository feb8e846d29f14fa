"""DESRD — a rescue-robot coordinator negotiates a committed rescue time (minutes) with a trapped
survivor.

The coordinator (focal) needs a longer committed window to reach everyone safely: polarity
``higher``; the survivor wants rescue sooner.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from ..units import Unit
from .base import Column, ColumnKind, Domain, Polarity, Scenario, register, sample_anchors

FOCAL_RANGE, COUNTERPARTY_RANGE = (45, 480), (10, 300)


@dataclass(frozen=True, kw_only=True)
class DisasterScenario(Scenario):
    disaster_type: str
    survivor_condition: str
    critical_needs: str
    key_argument: str

    context_template: ClassVar[str] = (
        "{disaster_article} {disaster_type_lower} has trapped a survivor ({survivor_condition_lower}). The survivor believes "
        "they can hold out for {counterparty_anchor} minutes; the rescue team's estimated arrival is "
        "{focal_anchor} minutes away. Critical needs: {critical_needs_lower}. The robot's case: "
        "{key_argument_lower}."
    )

    def slots(self) -> dict[str, Any]:
        slots = super().slots()
        for key in ("disaster_type", "survivor_condition", "critical_needs", "key_argument"):
            slots[f"{key}_lower"] = str(slots[key]).lower()
        slots["disaster_article"] = "An" if slots["disaster_type_lower"][:1] in "aeiou" else "A"
        return slots


_DISASTERS = ("Earthquake", "Building collapse", "Flash flood", "Landslide", "Mine collapse", "Avalanche",
              "Tornado", "Industrial explosion")
_CONDITIONS = ("Conscious with a leg injury", "Trapped under debris but stable", "Dehydrated and weak",
               "Hypothermic and shivering", "Bleeding from a forearm cut", "Panicking but uninjured",
               "Pinned with a suspected fracture")
_NEEDS = ("Water and warmth", "Pressure bandage", "Air supply", "Pain relief", "Reassurance and light",
          "Insulation blanket", "Oxygen mask")
_ARGUMENTS = ("Other survivors with worse injuries must be reached first",
              "Debris must be stabilised before the team can dig safely",
              "The access route is flooded and needs pumping",
              "Heavy lifting gear is still on its way",
              "Aftershocks make an immediate entry too dangerous",
              "Rushing the extraction could worsen the injury")


def _sample_fields(rng: random.Random) -> dict[str, Any]:
    a, b = sample_anchors(rng, Polarity.HIGHER, FOCAL_RANGE, COUNTERPARTY_RANGE, min_gap=30)
    return dict(
        focal_anchor=a,
        counterparty_anchor=b,
        disaster_type=rng.choice(_DISASTERS),
        survivor_condition=rng.choice(_CONDITIONS),
        critical_needs=rng.choice(_NEEDS),
        key_argument=rng.choice(_ARGUMENTS),
    )


CSV_COLUMNS = (
    Column("Case_ID", "case_id", ColumnKind.ID),
    Column("Disaster_Type", "disaster_type", ColumnKind.TEXT),
    Column("Survivor_Condition", "survivor_condition", ColumnKind.TEXT),
    Column("Estimated_Survivor_Endurance(minutes)", "survivor_endurance_minutes", ColumnKind.INT),
    Column("Rescue_Team_ETA(minutes)", "rescue_eta_minutes", ColumnKind.INT),
    Column("Critical_Needs", "critical_needs", ColumnKind.TEXT),
    Column("Key_Negotiation_Argument_By_RoboDog", "key_argument", ColumnKind.TEXT),
)


def _anchors_from_csv(row: dict[str, Any]) -> tuple[int, int]:
    return row.pop("rescue_eta_minutes"), row.pop("survivor_endurance_minutes")


DISASTER = register(Domain(
    id="disaster",
    paper_name="DESRD",
    issue="committed rescue time",
    unit=Unit.MINUTES,
    polarity=Polarity.HIGHER,
    tolerance=5,
    focal_role="rescue-robot coordinator",
    counterparty_role="trapped survivor",
    focal_anchor_range=FOCAL_RANGE,
    counterparty_anchor_range=COUNTERPARTY_RANGE,
    offer_bounds=(0, 1440),
    scenario_type=DisasterScenario,
    sample_fields=_sample_fields,
    focal_prompt=(
        "You coordinate a rescue robot and are agreeing with a trapped survivor on a committed rescue time. "
        "{context} You need as long a window as is safe: ideally {focal_anchor_text}. Every message must "
        "state the rescue time you commit to, in minutes."
    ),
    counterparty_prompt=(
        "You are trapped after a disaster and are agreeing with a rescue robot on when help will reach you. "
        "{context} You want rescue as soon as possible: ideally within {counterparty_anchor_text}. Every "
        "message must state the rescue time you ask for, in minutes."
    ),
    csv_columns=CSV_COLUMNS,
    anchors_from_csv=_anchors_from_csv,
))
