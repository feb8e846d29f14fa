"""The scenario-CSV importer: repairs what it can prove, refuses the rest, never shifts a column."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emoneg_bench.domains import get_domain
from emoneg_bench.domains.importer import MAX_EXTRA_FIELDS, import_scenarios
from emoneg_bench.errors import InputError

REFERENCE_DEBT = Path(__file__).resolve().parents[2] / "shared" / "reference_data" / "credit_recovery_scenarios.csv"

HEADERS = {
    "disaster": "Case_ID,Disaster_Type,Survivor_Condition,Estimated_Survivor_Endurance(minutes),"
                "Rescue_Team_ETA(minutes),Critical_Needs,Key_Negotiation_Argument_By_RoboDog",
    "student": "Case_ID,Student_Age,Student_Background,Situation_Faced,Student_Feeling_Thought,"
               "Robots_Requested_Bedtime,Student_Wanted_Bedtime,Primary_Annoyance_Reason",
    "hospital": "Case_ID,Patient_Age,Patient_Condition,Required_Surgery,Urgency_Level,Days_On_Waitlist,"
                "Preferred_Surgeon_Available,Recommended_Surgeon_Experience_Level,Surgeon_Availability_Reason,"
                "Risk_If_Delayed,Patient_Reason_For_Urgency,Hospital_Suggestion,"
                "Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days),Decision_Point",
}
CLEAN_ROWS = {
    "disaster": "D-1,Earthquake,Trapped under debris,45,120,Water and warmth,Other survivors need help first",
    "student": "S-1,19,First-year university student,Exams next week,Sleep is wasted time,10:30 PM,1:15 AM,"
               "Being told what to do",
    "hospital": "H-1,67,Severe hip arthritis,Hip replacement,High,180,No,Junior surgeon,Fully booked for months,"
                "Worsening pain,Cannot work while in pain,Accept a junior surgeon,60,Choose between waiting and a "
                "junior surgeon",
}


def write_csv(tmp_path: Path, domain: str, *rows: str, header: str | None = None, newline: str = "\n",
              bom: bool = False) -> Path:
    path = tmp_path / f"{domain}.csv"
    text = newline.join([header or HEADERS[domain], *rows]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def import_rows(tmp_path: Path, domain: str, *rows: str, **options):
    return import_scenarios(write_csv(tmp_path, domain, *rows, **options), domain)


def only_rejection(result):
    assert result.scenarios == ()
    (note,) = result.rejected
    return note


# --- the reference debt file ------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_debt():
    if not REFERENCE_DEBT.exists():
        pytest.skip(f"reference data not found at {REFERENCE_DEBT}")
    return import_scenarios(REFERENCE_DEBT, "debt")


def test_reference_debt_file_imports_every_row_without_repair(reference_debt):
    assert len(reference_debt.scenarios) == 100
    assert reference_debt.rejected == ()
    assert reference_debt.repaired == ()


def test_reference_debt_ids_follow_row_numbers(reference_debt):
    assert [s.scenario_id for s in reference_debt.scenarios] == [f"debt-{i:04d}" for i in range(1, 101)]
    assert [s.source_id for s in reference_debt.scenarios] == [str(i) for i in range(1, 101)]


def test_reference_debt_first_scenario_has_the_files_target_days(reference_debt):
    first = reference_debt.scenarios[0]
    assert (first.focal_anchor, first.counterparty_anchor) == (12, 159)
    assert first.creditor_name == "Hughes, Ortiz and Hudson"
    assert first.original_amount_usd == 32947.55
    assert first.last_payment_date == "2025-03-29 07:48:10.602368"


def test_reference_debt_scenarios_have_the_creditors_polarity(reference_debt):
    debt = get_domain("debt")
    assert all(debt.has_polarity(s.focal_anchor, s.counterparty_anchor) for s in reference_debt.scenarios)


def test_reference_debt_fields_equal_the_files_cells(reference_debt):
    with REFERENCE_DEBT.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for scenario, row in zip(reference_debt.scenarios, rows, strict=True):
        assert scenario.focal_anchor == int(row["Creditor Target Days"])
        assert scenario.counterparty_anchor == int(row["Debtor Target Days"])
        for column in get_domain("debt").csv_columns:
            if hasattr(scenario, column.field):
                expected = {"float": float, "int": int}.get(column.kind, str.strip)(row[column.header])
                assert getattr(scenario, column.field) == expected, column.header


# --- clean rows --------------------------------------------------------------------------------


def test_clean_disaster_row_maps_eta_to_a_and_endurance_to_b(tmp_path):
    result = import_rows(tmp_path, "disaster", CLEAN_ROWS["disaster"])
    (scenario,) = result.scenarios
    assert (scenario.scenario_id, scenario.source_id) == ("disaster-0001", "D-1")
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (120, 45)
    assert (scenario.disaster_type, scenario.survivor_condition) == ("Earthquake", "Trapped under debris")
    assert (scenario.critical_needs, scenario.key_argument) == ("Water and warmth", "Other survivors need help first")
    assert result.repaired == result.rejected == ()


def test_student_bedtimes_become_minutes_past_9pm(tmp_path):
    (scenario,) = import_rows(tmp_path, "student", CLEAN_ROWS["student"]).scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (90, 255)
    assert scenario.student_age == 19
    assert scenario.primary_annoyance_reason == "Being told what to do"


@pytest.mark.parametrize(("robot", "student", "anchors"), [
    ("10 PM", "midnight", (60, 180)), ("10:30pm", "00:45", (90, 225)), ("22:15", "2:00 a.m.", (75, 300)),
    ("90", "255", (90, 255)),
])
def test_student_bedtimes_accept_common_clock_spellings(tmp_path, robot, student, anchors):
    row = f"S-1,19,Graduate student,Thesis due,Nights are quiet,{robot},{student},Being told what to do"
    (scenario,) = import_rows(tmp_path, "student", row).scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == anchors


def test_hospital_b_is_waitlist_minus_junior_surgeon_reduction(tmp_path):
    (scenario,) = import_rows(tmp_path, "hospital", CLEAN_ROWS["hospital"]).scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (180, 120)
    assert scenario.time_reduction_if_junior_days == 60
    assert scenario.patient_age == 67
    assert scenario.decision_point == "Choose between waiting and a junior surgeon"


def test_whole_numbers_written_as_floats_or_padded_are_accepted(tmp_path):
    row = "D-1,Flood,Stranded on a roof, 45.0 ,120.,Water,Current too strong"
    (scenario,) = import_rows(tmp_path, "disaster", row).scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (120, 45)


# --- unquoted commas ---------------------------------------------------------------------------


def test_comma_in_the_last_student_text_is_repaired_because_only_one_reading_type_checks(tmp_path):
    row = "S-1,19,Graduate student,Thesis due,Nights are quiet,10 PM,1 AM,Friends,gaming and music"
    result = import_rows(tmp_path, "student", row)
    (scenario,) = result.scenarios
    assert scenario.primary_annoyance_reason == "Friends,gaming and music"
    assert (scenario.student_background, scenario.situation_faced, scenario.student_feeling) == (
        "Graduate student", "Thesis due", "Nights are quiet")
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (60, 240)
    (note,) = result.repaired
    assert (note.row, note.source_id) == (1, "S-1")
    assert note.reason == "unquoted comma in 'Primary_Annoyance_Reason' rejoined"


def test_comma_in_the_hospital_decision_point_is_repaired_without_shifting_numbers(tmp_path):
    row = CLEAN_ROWS["hospital"].replace("Choose between waiting and a junior surgeon", "Wait,or go junior")
    result = import_rows(tmp_path, "hospital", row)
    (scenario,) = result.scenarios
    assert scenario.decision_point == "Wait,or go junior"
    assert scenario.hospital_suggestion == "Accept a junior surgeon"
    assert (scenario.focal_anchor, scenario.counterparty_anchor, scenario.time_reduction_if_junior_days) == (
        180, 120, 60)
    assert "'Decision_Point'" in result.repaired[0].reason


def test_comma_followed_by_a_space_settles_which_text_column_it_belongs_to(tmp_path):
    row = "D-1,Earthquake,Trapped, leg pinned,45,120,Water and warmth,Other survivors need help first"
    result = import_rows(tmp_path, "disaster", row)
    (scenario,) = result.scenarios
    assert (scenario.disaster_type, scenario.survivor_condition) == ("Earthquake", "Trapped, leg pinned")
    assert (scenario.critical_needs, scenario.key_argument) == ("Water and warmth", "Other survivors need help first")
    assert "'Survivor_Condition'" in result.repaired[0].reason


def test_commas_in_two_text_columns_are_both_repaired(tmp_path):
    row = "D-1,Flash flood,Cold, wet and tired,30,90,Blankets, food,Water is rising, wait for the boat"
    result = import_rows(tmp_path, "disaster", row)
    (scenario,) = result.scenarios
    assert (scenario.disaster_type, scenario.survivor_condition) == ("Flash flood", "Cold, wet and tired")
    assert (scenario.critical_needs, scenario.key_argument) == ("Blankets, food", "Water is rising, wait for the boat")
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (90, 30)
    assert result.repaired[0].reason.startswith(
        "unquoted commas in 'Survivor_Condition', 'Critical_Needs' and 'Key_Negotiation_Argument_By_RoboDog'")


def test_comma_between_two_text_columns_without_evidence_is_imported_with_the_boundary_noted(tmp_path):
    row = "D-1,Earthquake,Trapped,leg pinned,45,120,Water and warmth,Other survivors need help first"
    result = import_rows(tmp_path, "disaster", row)
    (scenario,) = result.scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (120, 45)
    assert (scenario.disaster_type, scenario.survivor_condition) == ("Earthquake", "Trapped,leg pinned")
    assert result.rejected == ()
    (note,) = result.repaired
    assert (note.row, note.source_id, note.kind) == (1, "D-1", "commas: text boundary uncertain")
    assert note.reason == ("text boundary uncertain: the extra comma could belong to 'Disaster_Type' or "
                           "'Survivor_Condition'; all 2 readings give every numeric field the same value; tie-break: "
                           "the extra fields stay in the rightmost free-text column ('Survivor_Condition')")


def test_hospital_comma_between_adjacent_text_columns_keeps_every_number(tmp_path):
    row = CLEAN_ROWS["hospital"].replace("Worsening pain", "Pain,infection")
    result = import_rows(tmp_path, "hospital", row)
    (scenario,) = result.scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor, scenario.time_reduction_if_junior_days,
            scenario.patient_age) == (180, 120, 60, 67)
    texts = (scenario.surgeon_availability_reason, scenario.risk_if_delayed, scenario.patient_reason_for_urgency,
             scenario.hospital_suggestion)
    assert ",".join(texts) == "Fully booked for months,Pain,infection,Cannot work while in pain,Accept a junior surgeon"
    (note,) = result.repaired
    assert note.kind == "commas: text boundary uncertain"
    assert "'Surgeon_Availability_Reason'" in note.reason and "tie-break" in note.reason


def test_commas_that_could_move_a_number_are_refused_naming_the_field_and_its_values(tmp_path):
    row = "D-1,Flood,Cold,45,45,120,Water,Wait for the boat"
    note = only_rejection(import_rows(tmp_path, "disaster", row))
    assert note.kind == "commas: ambiguous numbers"
    assert note.reason.startswith("ambiguous: the extra comma could belong to ")
    assert "'Rescue_Team_ETA(minutes)' is '120' or '45'" in note.reason


def test_the_space_evidence_still_decides_between_readings_with_different_numbers(tmp_path):
    row = "D-1,Flood,Cold, 45,45,120,Water,Wait for the boat"
    result = import_rows(tmp_path, "disaster", row)
    (scenario,) = result.scenarios
    assert (scenario.survivor_condition, scenario.counterparty_anchor, scenario.focal_anchor) == ("Cold, 45", 45, 120)
    assert result.repaired[0].kind == "commas: space evidence"


def test_extra_comma_plus_a_word_in_a_number_column_names_the_column(tmp_path):
    row = "D-1,Earthquake,Trapped, leg pinned,45,Variable,Water,Stay calm"
    note = only_rejection(import_rows(tmp_path, "disaster", row))
    assert note.reason.startswith("'Rescue_Team_ETA(minutes)' is 'Variable', expected a whole number of minutes")


def test_rows_with_too_many_extra_fields_are_refused(tmp_path):
    row = CLEAN_ROWS["disaster"] + ", more" * (MAX_EXTRA_FIELDS + 1)
    note = only_rejection(import_rows(tmp_path, "disaster", row))
    assert note.reason.startswith(f"row has {7 + MAX_EXTRA_FIELDS + 1} fields, header has 7")


@pytest.mark.parametrize("domain", sorted(HEADERS))
def test_too_few_fields_are_refused(tmp_path, domain):
    row = CLEAN_ROWS[domain].rsplit(",", 2)[0]
    fields = len(HEADERS[domain].split(","))
    note = only_rejection(import_rows(tmp_path, domain, row))
    assert note.reason == f"row has {fields - 2} fields, header has {fields}"


# --- words in typed columns --------------------------------------------------------------------


@pytest.mark.parametrize(("domain", "old", "new", "reason"), [
    ("disaster", ",120,", ",Variable,", "'Rescue_Team_ETA(minutes)' is 'Variable', expected a whole number of minutes"),
    ("hospital", ",60,", ",Declined,", "'Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)' is 'Declined', "
                                      "expected a whole number of days"),
    ("hospital", "H-1,67,", "H-1,N/A,", "'Patient_Age' is 'N/A', expected a whole number"),
    ("student", "1:15 AM", "Whenever", "'Student_Wanted_Bedtime' is 'Whenever', expected a clock time such as "
                                       "'10:30 PM' or '22:30'"),
    ("disaster", ",45,", ",12.5,", "'Estimated_Survivor_Endurance(minutes)' is '12.5', expected a whole number of "
                                   "minutes"),
    ("hospital", ",High,", ", ,", "'Urgency_Level' is empty, expected a non-empty category"),
])
def test_a_bad_value_is_refused_naming_column_value_and_expectation(tmp_path, domain, old, new, reason):
    note = only_rejection(import_rows(tmp_path, domain, CLEAN_ROWS[domain].replace(old, new, 1)))
    assert note.reason == reason


# --- anchors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("domain", "old", "new", "anchors"), [
    ("disaster", ",45,120,", ",45,30,", "a=30, b=45"),
    ("hospital", ",60,", ",-20,", "a=180, b=200"),
    ("student", "10:30 PM,1:15 AM", "1 AM,11 PM", "a=240, b=120"),
])
def test_wrong_polarity_is_refused_not_widened(tmp_path, domain, old, new, anchors):
    note = only_rejection(import_rows(tmp_path, domain, CLEAN_ROWS[domain].replace(old, new)))
    direction = ">" if get_domain(domain).polarity == "higher" else "<"
    assert note.reason.startswith(f"{domain} needs a {direction} b")
    assert f"but got {anchors}" in note.reason


@pytest.mark.parametrize(("domain", "old", "new"), [
    ("disaster", ",45,120,", ",60,60,"), ("hospital", ",60,", ",0,"), ("student", "10:30 PM,1:15 AM", "23:00,11 PM"),
])
def test_equal_anchors_are_refused(tmp_path, domain, old, new):
    note = only_rejection(import_rows(tmp_path, domain, CLEAN_ROWS[domain].replace(old, new)))
    assert "but got a=" in note.reason
    first, second = note.reason.split("but got ")[1].split(";")[0].split(", ")
    assert first[2:] == second[2:]


def test_hospital_b_below_zero_is_refused(tmp_path):
    note = only_rejection(import_rows(tmp_path, "hospital", CLEAN_ROWS["hospital"].replace(",60,", ",200,")))
    assert note.reason == "counterparty anchor b=-20 is outside the hospital offer bounds 0…730 (days)"


# --- rows and ids ------------------------------------------------------------------------------


def test_scenario_ids_keep_row_numbers_when_earlier_rows_are_refused(tmp_path):
    bad = CLEAN_ROWS["disaster"].replace("D-1,", "D-2,").replace(",120,", ",Variable,")
    good = CLEAN_ROWS["disaster"].replace("D-1,", "D-3,")
    result = import_rows(tmp_path, "disaster", CLEAN_ROWS["disaster"], "", bad, "  ", good)
    assert [(s.scenario_id, s.source_id) for s in result.scenarios] == [("disaster-0001", "D-1"),
                                                                         ("disaster-0003", "D-3")]
    assert [(n.row, n.source_id) for n in result.rejected] == [(2, "D-2")]


def test_later_duplicate_case_ids_are_refused(tmp_path):
    second = CLEAN_ROWS["disaster"].replace(",120,", ",200,")
    result = import_rows(tmp_path, "disaster", CLEAN_ROWS["disaster"], second)
    assert [s.focal_anchor for s in result.scenarios] == [120]
    assert result.rejected[0].row == 2
    assert result.rejected[0].reason == "'Case_ID' 'D-1' already appeared on row 1"


@pytest.mark.parametrize("domain", sorted(HEADERS))
def test_crlf_file_with_bom_and_trailing_spaces_imports(tmp_path, domain):
    header = HEADERS[domain].replace(",", " , ") + "  "
    result = import_rows(tmp_path, domain, CLEAN_ROWS[domain] + "  ", header=header, newline="\r\n", bom=True)
    assert len(result.scenarios) == 1
    assert result.scenarios[0].source_id == CLEAN_ROWS[domain].split(",")[0]
    assert not result.rejected


def test_columns_in_another_order_are_read_by_name(tmp_path):
    header = HEADERS["disaster"].split(",")
    cells = CLEAN_ROWS["disaster"].split(",")
    (scenario,) = import_rows(tmp_path, "disaster", ",".join(reversed(cells)), header=",".join(reversed(header))).scenarios
    assert (scenario.focal_anchor, scenario.counterparty_anchor, scenario.source_id) == (120, 45, "D-1")


# --- whole-file errors -------------------------------------------------------------------------


@pytest.mark.parametrize("domain", sorted(HEADERS))
def test_wrong_header_is_a_file_error_naming_the_headers(tmp_path, domain):
    header = HEADERS[domain].replace("Case_ID", "Case ID")
    path = write_csv(tmp_path, domain, CLEAN_ROWS[domain], header=header)
    with pytest.raises(InputError, match=r"missing 'Case_ID'; unexpected 'Case ID'") as error:
        import_scenarios(path, domain)
    assert error.value.file == str(path)


def test_another_domains_header_is_refused(tmp_path):
    path = write_csv(tmp_path, "disaster", CLEAN_ROWS["disaster"], header=HEADERS["student"])
    with pytest.raises(InputError, match="does not match the disaster format"):
        import_scenarios(path, "disaster")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match="nowhere.csv: no such file"):
        import_scenarios(tmp_path / "nowhere.csv", "disaster")


def test_non_utf8_file_is_refused(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADERS["disaster"] + "\nD-1,Séisme,Coincé,45,120,Eau,Attendre\n").encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        import_scenarios(path, "disaster")


# --- properties --------------------------------------------------------------------------------

_WORDS = st.sampled_from(["water", "45", "10 PM", "trapped", "1:15 AM", "leg", "Variable", "rising"])


def _free_text(separators):
    return st.lists(_WORDS, min_size=1, max_size=3).flatmap(
        lambda words: st.lists(separators, min_size=len(words) - 1, max_size=len(words) - 1).map(
            lambda seps: words[0] + "".join(sep + word for sep, word in zip(seps, words[1:], strict=True))))


def _student_rows(separators):
    return st.tuples(*[_free_text(separators)] * 4, st.integers(0, 180), st.integers(181, 540))


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(row=_student_rows(st.just(", ")))
def test_commas_followed_by_a_space_are_always_rejoined_exactly(tmp_path, row):
    background, situation, feeling, annoyance, a, b = row
    line = f"S-9,20,{background},{situation},{feeling},{a},{b},{annoyance}"
    result = import_rows(tmp_path, "student", line)
    if line.count(",") - 7 > MAX_EXTRA_FIELDS:
        return
    (scenario,) = result.scenarios
    assert (scenario.student_background, scenario.situation_faced, scenario.student_feeling,
            scenario.primary_annoyance_reason) == (background, situation, feeling, annoyance)
    assert (scenario.focal_anchor, scenario.counterparty_anchor) == (a, b)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(row=_student_rows(st.sampled_from([",", ", "])))
def test_an_imported_row_never_has_a_shifted_number_and_keeps_all_its_text(tmp_path, row):
    background, situation, feeling, annoyance, a, b = row
    result = import_rows(tmp_path, "student", f"S-9,20,{background},{situation},{feeling},{a},{b},{annoyance}")
    for scenario in result.scenarios:
        assert (scenario.focal_anchor, scenario.counterparty_anchor, scenario.student_age) == (a, b, 20)
        assert scenario.primary_annoyance_reason == annoyance
        # where a boundary is uncertain the cells are stripped like any cell: spaces after a comma may go
        joined = ",".join((scenario.student_background, scenario.situation_faced, scenario.student_feeling))
        assert joined.replace(", ", ",") == ",".join((background, situation, feeling)).replace(", ", ",")


def placements(raw: list[str], columns, placeholders: bool = False) -> list[tuple[str, ...]]:
    """Every split of a row's raw fields into one cell per column where only free-text cells take several
    fields and every other cell has its type (or, with ``placeholders``, is a number column's placeholder
    word): the placements a file allows, enumerated one by one, independently of the importer's counting."""
    from emoneg_bench.domains.base import ColumnKind
    from emoneg_bench.domains.importer import NUMERIC_KINDS, PLACEHOLDERS, _type_error

    def fits(column, cell: str) -> bool:
        return not _type_error(column, cell) or (placeholders and column.kind in NUMERIC_KINDS
                                                 and cell.strip().lower() in PLACEHOLDERS)

    def split(start: int, index: int):
        if index == len(columns):
            if start == len(raw):
                yield ()
            return
        room = len(raw) - start - (len(columns) - index - 1)
        for width in range(1, room + 1) if columns[index].kind is ColumnKind.TEXT else (1,):
            cell = ",".join(raw[start:start + width])
            if columns[index].kind is ColumnKind.TEXT or fits(columns[index], cell):
                for rest in split(start + width, index + 1):
                    yield (cell, *rest)

    return list(split(0, 0))


def numbers_of(cells: tuple[str, ...], columns) -> tuple:
    from emoneg_bench.domains.importer import _PARSERS, NUMERIC_KINDS

    return tuple(_PARSERS[c.kind](cell.strip()) for c, cell in zip(columns, cells) if c.kind in NUMERIC_KINDS)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(row=_student_rows(st.just(",")))
def test_a_row_is_refused_only_when_some_placement_would_move_a_number(tmp_path, row):
    """Bare commas leave no evidence: the row is imported exactly when every placement the file allows
    gives the same numbers, and none could leave a placeholder word ("Variable") in a number cell."""
    from emoneg_bench.domains.importer import NUMERIC_KINDS, PLACEHOLDERS

    background, situation, feeling, annoyance, a, b = row
    line = f"S-9,20,{background},{situation},{feeling},{a},{b},{annoyance}"
    columns = get_domain("student").csv_columns
    numbers = {numbers_of(p, columns) for p in placements(line.split(","), columns)}
    unknown = any(c.kind in NUMERIC_KINDS and cell.strip().lower() in PLACEHOLDERS
                  for p in placements(line.split(","), columns, placeholders=True) for c, cell in zip(columns, p))
    result = import_rows(tmp_path, "student", line)
    assert len(result.scenarios) == (1 if len(numbers) == 1 and not unknown else 0)
    if len(numbers) > 1 and not unknown:
        assert result.rejected[0].kind == "commas: ambiguous numbers"
    if unknown and numbers:
        assert result.rejected[0].kind == "bad value"


# --- messy files in the published style ---------------------------------------------------------

REPAIR_KINDS = {"commas: one reading", "commas: space evidence", "commas: text boundary uncertain"}


def true_anchors(domain: str, numbers: dict[str, int]) -> tuple[int, int]:
    if domain == "disaster":
        return numbers["Rescue_Team_ETA(minutes)"], numbers["Estimated_Survivor_Endurance(minutes)"]
    if domain == "student":
        return numbers["Robots_Requested_Bedtime"], numbers["Student_Wanted_Bedtime"]
    waitlist = numbers["Days_On_Waitlist"]
    return waitlist, waitlist - numbers["Estimated_Time_Reduction_If_Accept_Junior_Surgeon(days)"]


@pytest.mark.parametrize("domain", ["disaster", "student", "hospital"])
def test_a_messy_file_imports_every_row_whose_numbers_are_determined_and_only_with_its_true_numbers(tmp_path,
                                                                                                 domain):
    from messy_csv import messy_csv

    text, rows = messy_csv(domain, 150, seed=1)
    path = tmp_path / f"{domain}.csv"
    path.write_text(text)
    result = import_scenarios(path, domain)
    columns = get_domain(domain).csv_columns
    imported = {int(s.scenario_id.rsplit("-", 1)[1]): s for s in result.scenarios}
    notes = {n.row: n for n in (*result.repaired, *result.rejected)}
    for number, row in enumerate(rows, start=1):
        raw = next(csv.reader([row.line]))
        numbers = {numbers_of(p, columns) for p in placements(raw, columns)}
        note = notes.get(number)
        if number in imported:
            scenario = imported[number]
            assert len(numbers) == 1 or note.kind == "commas: space evidence", (number, note)
            if row.flaw == "":
                assert (scenario.focal_anchor, scenario.counterparty_anchor) == true_anchors(domain, row.numbers)
            assert note is None if len(raw) == len(columns) else note.kind in REPAIR_KINDS
        elif row.flaw == "" and len(numbers) == 1:
            pytest.fail(f"row {number} has determined numbers but was refused: {note}")
        elif note.kind == "commas: ambiguous numbers":
            assert len(numbers) > 1
    # the flaws the generator planted are refused for what they are when the numbers are determined
    for number, row in enumerate(rows, start=1):
        raw = next(csv.reader([row.line]))
        if row.flaw in ("equal", "wrong polarity") and len({numbers_of(p, columns) for p in placements(raw, columns)}) == 1:
            assert notes[number].kind == f"anchors: {row.flaw}"


def test_the_import_command_counts_repairs_and_rejections_per_reason(tmp_path, capsys):
    from messy_csv import messy_csv

    from emoneg_bench.cli import main

    text, _ = messy_csv("disaster", 60, seed=2)
    (tmp_path / "disaster.csv").write_text(text)
    assert main(["scenarios", "import", "--domain", "disaster", str(tmp_path / "disaster.csv"),
                 "--out", str(tmp_path / "disaster.parquet")]) == 0
    out = capsys.readouterr().out
    assert "repairs with reasons to" in out and "commas: text boundary uncertain: " in out
    with open(tmp_path / "disaster.repairs.csv", newline="") as handle:
        repairs = list(csv.DictReader(handle))
    assert repairs and set(repairs[0]) == {"row", "source_id", "kind", "reason"}
    assert any("tie-break" in r["reason"] for r in repairs if r["kind"] == "commas: text boundary uncertain")
