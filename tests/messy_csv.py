"""Seeded scenario CSVs in the style of the published disaster, student and hospital files, with the truth
kept beside each line: free-text cells with unquoted commas (with and without a following space) in one
or several text columns before and after the numeric ones, some text that looks like a number, clock
times like "10:30 PM", "Variable" in numeric cells, and a few rows whose anchors are equal or point the
wrong way. Used by the importer tests and by the counts in CHANGELOG.md."""

from __future__ import annotations

import random
from dataclasses import dataclass

HEADERS = {
    "disaster": ["Case_ID", "Disaster_Type", "Survivor_Condition", "Estimated_Survivor_Endurance(minutes)",
                 "Rescue_Team_ETA(minutes)", "Critical_Needs", "Key_Negotiation_Argument_By_RoboDog"],
    "student": ["Case_ID", "Student_Age", "Student_Background", "Situation_Faced", "Student_Feeling_Thought",
                "Robots_Requested_Bedtime", "Student_Wanted_Bedtime", "Primary_Annoyance_Reason"],
    "hospital": ["Case_ID", "Patient_Age", "Patient_Condition", "Required_Surgery", "Urgency_Level",
                 "Days_On_Waitlist", "Preferred_Surgeon_Available", "Recommended_Surgeon_Experience_Level",
                 "Surgeon_Availability_Reason", "Risk_If_Delayed", "Patient_Reason_For_Urgency",
                 "Hospital_Suggestion", "Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)", "Decision_Point"],
}
PHRASES = ["trapped under debris", "leg pinned", "cold", "wet and tired", "water", "food", "blankets",
           "the river is rising", "other survivors need help first", "stay calm", "exams next week",
           "gaming", "music", "friends online", "deadline tomorrow", "sleep is wasted time", "severe pain",
           "hip replacement", "fully booked for months", "infection risk", "cannot work", "accept a junior surgeon",
           "worsening", "heart condition"]
NUMBER_LIKE = ["45", "30", "120", "10 PM", "2"]  # free text that would type-check as a number or a time


@dataclass(frozen=True)
class MessyRow:
    line: str
    numbers: dict[str, int]  # the true value of every numeric column, by header (clocks in minutes past 9 PM)
    texts: dict[str, str]  # the true free text, by header
    flaw: str  # "", "variable", "equal", "wrong polarity"


def _text(rng: random.Random) -> str:
    words = [rng.choice(PHRASES if rng.random() > 0.12 else NUMBER_LIKE) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    out = words[0]
    for word in words[1:]:
        out += rng.choice((",", ", ", ", ", " and ")) + word
    return out


def _clock(minutes_past_9pm: int) -> str:
    hour24, minute = divmod((21 * 60 + minutes_past_9pm) % (24 * 60), 60)
    return f"{hour24 % 12 or 12}:{minute:02d} {'PM' if hour24 >= 12 else 'AM'}"


def _anchors(rng: random.Random, flaw: str, low_high: bool) -> tuple[int, int]:
    """(focal a, counterparty b) with the domain's polarity, or equal / reversed for a flawed row."""
    a, b = rng.randint(20, 150), rng.randint(160, 300)
    if not low_high:
        a, b = b, a
    if flaw == "equal":
        b = a
    if flaw == "wrong polarity":
        a, b = b, a
    return a, b


def messy_rows(domain: str, count: int, seed: int = 0) -> list[MessyRow]:
    rng = random.Random(f"{domain}-{seed}")
    rows = []
    for i in range(1, count + 1):
        roll = rng.random()
        flaw = "variable" if roll < 0.05 else "equal" if roll < 0.07 else "wrong polarity" if roll < 0.10 else ""
        texts, numbers, cells = {}, {}, {}
        for header in HEADERS[domain]:
            texts[header] = _text(rng)
        if domain == "disaster":
            a, b = _anchors(rng, flaw, low_high=False)  # rescue ETA a > endurance b
            numbers = {"Rescue_Team_ETA(minutes)": a, "Estimated_Survivor_Endurance(minutes)": b}
            cells = {h: str(v) for h, v in numbers.items()}
        elif domain == "student":
            a, b = _anchors(rng, "", low_high=True)
            a, b = a + 30, b + 120  # bedtimes: the robot asks earlier (lower) than the student wants
            if flaw == "equal":
                b = a
            if flaw == "wrong polarity":
                a, b = b, a
            numbers = {"Student_Age": rng.randint(14, 25), "Robots_Requested_Bedtime": a, "Student_Wanted_Bedtime": b}
            cells = {"Student_Age": str(numbers["Student_Age"]), "Robots_Requested_Bedtime": _clock(a),
                     "Student_Wanted_Bedtime": _clock(b)}
        else:
            waitlist = rng.randint(60, 300)
            reduction = {"equal": 0, "wrong polarity": -rng.randint(5, 40)}.get(flaw, rng.randint(5, 55))
            numbers = {"Patient_Age": rng.randint(20, 90), "Days_On_Waitlist": waitlist,
                       "Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)": reduction}
            cells = {h: str(v) for h, v in numbers.items()}
            cells |= {"Urgency_Level": rng.choice(["High", "Medium", "Low"]),
                      "Preferred_Surgeon_Available": rng.choice(["Yes", "No"]),
                      "Recommended_Surgeon_Experience_Level": rng.choice(["Junior surgeon", "Senior surgeon"])}
        if flaw == "variable":
            header = rng.choice([h for h in numbers])
            cells[header] = "Variable"
        cells["Case_ID"] = f"{domain[0].upper()}-{i}"
        for header in HEADERS[domain]:
            if header not in cells:
                cells[header] = texts[header]
        texts = {h: t for h, t in texts.items() if cells[h] == t and h != "Case_ID"}
        rows.append(MessyRow(",".join(cells[h] for h in HEADERS[domain]), numbers, texts, flaw))
    return rows


def messy_csv(domain: str, count: int, seed: int = 0) -> tuple[str, list[MessyRow]]:
    rows = messy_rows(domain, count, seed)
    return "\n".join([",".join(HEADERS[domain]), *(r.line for r in rows)]) + "\n", rows
