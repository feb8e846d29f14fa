"""Import a published EmoMAS/EmoDistill scenario CSV (one file per domain) as typed scenarios.

Only the debt file of that family is valid CSV; the others carry free-text cells with unquoted
commas, words in numeric cells ("Variable", "Declined") and clock times ("10:30 PM"). The importer
repairs what it can prove, refuses the rest row by row with a reason, and never shifts a column.

Whole-file errors (:class:`InputError`, nothing imported): a missing or unreadable file, text that
is not UTF-8, a header that is not the domain's ``csv_columns`` headers (compared after stripping a
BOM and whitespace; the columns may come in any order, they are read by name).

Row rules. Blank lines are skipped and do not count; every other record is data row 1, 2, …, and
scenario ``i`` is ``<domain>-000i`` whether or not other rows were refused. Cells are stripped and
typed by their :class:`ColumnKind` (id/text/category non-empty, int a whole number, float a number,
clock a time of night as minutes past 9 PM, datetime an ISO date kept as text).

**Repair rule (unquoted commas).** A row with ``k`` more fields than the header (``k`` ≤
:data:`MAX_EXTRA_FIELDS`) is read under every way of handing the ``k`` extra fields to the free-text
(``TEXT``) columns, rejoining consecutive raw fields with ",". Readings where any other column fails
its type are dropped. Only how many extra fields each run of adjacent free-text columns takes can move
another column; inside a run, a share of ``s`` fields over ``t`` columns can be split C(s + t − 1, t − 1)
ways that all leave every other column in place, so those are counted, not tried one by one. Then, in
order:

1. One reading left: imported, noted as repaired (``commas: one reading``).
2. Several left, and the writer's evidence picks one — CSV writers never put a space after a real
   delimiter, so a raw field starting with whitespace is a continuation; exactly one reading rejoins
   precisely those fields: imported, noted (``commas: space evidence``).
3. Several left that give every numeric field (int, number, clock) the same value: the numbers are
   proven whatever the placement, only where one free text ends and the next begins is not. Imported,
   noted with the columns whose boundary is uncertain, how many readings there were and the tie-break
   used: the reading that gives the earliest free-text columns the fewest extra fields, so the extras
   stay in the rightmost ones (``commas: text boundary uncertain``). Non-numeric columns that differ
   between the readings (a category) are named in the note too.
4. Otherwise a numeric field differs between readings: refused, naming the field and its values
   (``commas: ambiguous numbers``).

Before 1, 3 and 4, a row is refused (``bad value``) when some reading keeps every column typed except a
number column holding a placeholder word (:data:`PLACEHOLDERS`: "Variable", "Declined"…) and the space
evidence does not settle the row: the file may well say that number is unknown, and a number slid out
of the neighbouring free text would be made up.

Fewer fields than the header: refused. Every note carries a ``kind`` (the words in parentheses above and
below), so an import can be summarised by counts per reason.

**Anchors.** ``domain.anchors_from_csv`` gives (a, b). Both must lie within ``domain.offer_bounds``
(this also refuses a hospital b = waitlist − reduction below 0; ``anchors: out of bounds``), and they
must have the domain's polarity. A row whose anchors are equal (``anchors: equal``) or point the wrong
way (``anchors: wrong polarity``) is **refused, not widened**: the file's numbers are the scenario, and
inventing a gap would make up data. A Case_ID already used by an earlier row (even one refused for its
anchors) refuses the later row (``duplicate id``). A cell that is not of its column's type is refused
(``bad value``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..units import clock_to_minutes_past_9pm
from .base import Column, ColumnKind, Domain, Polarity, Scenario, get_domain, scenario_id

MAX_EXTRA_FIELDS = 24  # bounds the work: C(24 + runs − 1, runs − 1) readings per row, runs = runs of free text
NUMERIC_KINDS = (ColumnKind.INT, ColumnKind.FLOAT, ColumnKind.CLOCK)
# Words the published files write in number cells; a reading that puts one there (and every other
# column in place) is as possible as one that slides a number out of free text into that cell.
PLACEHOLDERS = {"variable", "declined", "unknown", "n/a", "na", "tbd", "none", "-"}


@dataclass(frozen=True)
class RowNote:
    """Why one data row was repaired or refused. ``row`` is 1-based, header and blank lines excluded;
    ``kind`` is the rule that applied (see the module docstring), for counts per reason."""

    row: int
    source_id: str
    reason: str
    kind: str = ""


@dataclass(frozen=True)
class ImportResult:
    domain: str
    scenarios: tuple[Scenario, ...]
    repaired: tuple[RowNote, ...]
    rejected: tuple[RowNote, ...]


class _Refused(Exception):
    """A row that cannot be imported; the message is the reason shown to the user."""

    def __init__(self, reason: str, kind: str = "bad value"):
        super().__init__(reason)
        self.kind = kind


def import_scenarios(path: str | os.PathLike, domain: str | Domain) -> ImportResult:
    """Read one domain's scenario CSV; see the module docstring for what is repaired and refused."""
    domain = get_domain(domain) if isinstance(domain, str) else domain
    if not domain.csv_columns or domain.anchors_from_csv is None:
        raise InputError(f"domain {domain.id!r} has no published CSV format to import")
    file = os.fspath(path)
    header, *rows = _read_records(file)
    columns = _columns_in_file_order(domain, header, file)
    id_column = next((c for c in columns if c.kind is ColumnKind.ID), None)

    scenarios: list[Scenario] = []
    repaired, rejected = [], []
    first_row_of_id: dict[str, int] = {}
    for row_number, raw in enumerate(rows, start=1):
        source_id = _raw_source_id(raw, columns, row_number)
        try:
            cells, repair, repair_kind = _split_fields(raw, columns)
            typed = {column.field: _typed(column, cell) for column, cell in zip(columns, cells, strict=True)}
            if id_column is not None:
                source_id = typed.pop(id_column.field)
                if source_id in first_row_of_id:
                    raise _Refused(f"{id_column.header!r} {source_id!r} already appeared on row "
                                   f"{first_row_of_id[source_id]}", "duplicate id")
                first_row_of_id[source_id] = row_number
            scenarios.append(_scenario(domain, row_number, source_id, typed))
        except _Refused as refusal:
            rejected.append(RowNote(row_number, source_id, str(refusal), refusal.kind))
            continue
        if repair:
            repaired.append(RowNote(row_number, source_id, repair, repair_kind))
    return ImportResult(domain.id, tuple(scenarios), tuple(repaired), tuple(rejected))


def _read_records(file: str) -> list[list[str]]:
    """The file's non-blank CSV records, header first."""
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", file=file) from None
    except OSError as error:
        raise InputError(f"cannot read the file ({error.strerror})", file=file) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"not UTF-8 text (byte {error.start}); save the file as UTF-8", file=file) from None
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in r)]
    except csv.Error as error:
        raise InputError(f"not readable as CSV ({error})", file=file) from None
    if not records:
        raise InputError("the file is empty; expected a header row", file=file)
    return records


def _columns_in_file_order(domain: Domain, header: Sequence[str], file: str) -> list[Column]:
    by_header = {column.header: column for column in domain.csv_columns}
    names = [name.strip() for name in header]
    problems = [
        f"{label} {', '.join(map(repr, found))}"
        for label, found in (
            ("missing", [name for name in by_header if name not in names]),
            ("unexpected", [name for name in names if name not in by_header]),
            ("repeated", sorted({name for name in names if names.count(name) > 1})),
        )
        if found
    ]
    if problems:
        raise InputError(f"the header does not match the {domain.id} format: {'; '.join(problems)}", file=file)
    return [by_header[name] for name in names]


def _raw_source_id(raw: Sequence[str], columns: Sequence[Column], row_number: int) -> str:
    """A label for a row refused before typing: its id cell when no free-text column precedes it."""
    if not any(column.kind is ColumnKind.ID for column in columns):
        return str(row_number)
    for index, column in enumerate(columns):
        if column.kind is ColumnKind.TEXT:
            return ""
        if column.kind is ColumnKind.ID:
            return raw[index].strip() if index < len(raw) else ""
    return ""


# --- unquoted commas --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """A way of rejoining a row's raw fields into the header's columns. Within a run of adjacent free-text
    columns the boundaries never move another column, so one reading stands for all ``placements`` that
    hand its run the same number of extra fields; its own ``cells`` keep them in the run's rightmost column."""

    cells: tuple[str, ...]
    rejoined: frozenset[int]  # indices of raw fields glued onto the field before them
    widened: tuple[Column, ...]  # text columns that absorbed extra fields
    error: str | None
    placements: int = 1
    uncertain: tuple[Column, ...] = ()  # columns of the runs that took extra fields and hold several texts
    placeholder: bool = False  # its only faults are words like 'Variable' in number columns


def _split_fields(raw: Sequence[str], columns: Sequence[Column]) -> tuple[Sequence[str], str | None, str]:
    """The row's cells, one per column, a repair note when unquoted commas were rejoined, and its kind."""
    extra = len(raw) - len(columns)
    if extra == 0:
        return raw, None, ""
    if extra < 0:
        raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}", "too few fields")
    if extra > MAX_EXTRA_FIELDS:
        raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}: more than "
                       f"{MAX_EXTRA_FIELDS} unquoted commas is too many to repair safely", "too many commas")
    readings = list(_readings(raw, columns, extra))
    valid = [reading for reading in readings if reading.error is None]
    evidence = _evidence_reading(raw, columns)
    placeholder = next((reading for reading in readings if reading.placeholder), None)
    if valid and placeholder is not None and (evidence is None or evidence.error is not None):
        # the file's own number cell may hold the word, not a number (unless the spaces say otherwise)
        raise _Refused(f"{placeholder.error} in a reading that keeps every other column in place, so that number "
                       "is not determined", "bad value")
    commas = "comma" if extra == 1 else "commas"
    placements = sum(reading.placements for reading in valid)
    if placements == 1:
        return valid[0].cells, f"unquoted {commas} in {_names(valid[0].widened)} rejoined", "commas: one reading"
    if placements > 1:
        if evidence is not None and evidence.error is None:
            return evidence.cells, (f"unquoted {commas} in {_names(evidence.widened)} rejoined, "
                                    "the only reading where each rejoined comma is followed by a space"), \
                "commas: space evidence"
        candidates = [c for c in columns if any(c in reading.uncertain or c in reading.widened for reading in valid)]
        what = "the extra comma" if extra == 1 else f"the {extra} extra commas"
        numeric = [i for i, c in enumerate(columns) if c.kind in NUMERIC_KINDS]
        differing = [i for i in numeric if len({_PARSERS[columns[i].kind](r.cells[i].strip()) for r in valid}) > 1]
        if differing:
            shown = "; ".join(f"{columns[i].header!r} is "
                              f"{' or '.join(sorted({repr(r.cells[i].strip()) for r in valid}))}" for i in differing)
            raise _Refused(f"ambiguous: {what} could belong to {_names(candidates, 'or')}, and the readings differ in "
                           f"a numeric field ({shown})", "commas: ambiguous numbers")
        chosen = valid[0]  # readings come in order of the extra fields kept furthest right
        others = [columns[i].header for i, c in enumerate(columns) if c.kind is not ColumnKind.TEXT
                  and i not in numeric and len({r.cells[i].strip() for r in valid}) > 1]
        also = f"; {', '.join(map(repr, others))} also differ{'s' * (len(others) == 1)} between them" if others else ""
        return chosen.cells, (f"text boundary uncertain: {what} could belong to {_names(candidates, 'or')}; all "
                              f"{placements} readings give every numeric field the same value{also}; tie-break: the "
                              f"extra fields stay in the rightmost free-text column{'s' * (len(chosen.widened) > 1)} "
                              f"({_names(chosen.widened)})"), "commas: text boundary uncertain"
    if evidence is not None:
        raise _Refused(f"{evidence.error} (after rejoining the unquoted {commas} in "
                       f"{_names(evidence.widened)})", "bad value")
    raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}, and no way of rejoining the "
                   "extra fields into free-text columns gives valid values for the other columns",
                   "commas: no valid reading")


def _text_runs(columns: Sequence[Column]) -> list[list[int]]:
    """The maximal runs of adjacent free-text columns, as column indices."""
    runs: list[list[int]] = []
    for i, column in enumerate(columns):
        if column.kind is ColumnKind.TEXT:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    return runs


def _reading(raw: Sequence[str], columns: Sequence[Column], widths: Sequence[int], placements: int = 1,
             uncertain: tuple[Column, ...] = ()) -> _Reading:
    cells, rejoined, start = [], set(), 0
    for width in widths:
        cells.append(",".join(raw[start:start + width]))
        rejoined.update(range(start + 1, start + width))
        start += width
    faults = [(c, cell, error) for c, cell in zip(columns, cells, strict=True) if c.kind is not ColumnKind.TEXT
              and (error := _type_error(c, cell))]
    placeholder = bool(faults) and all(c.kind in NUMERIC_KINDS and cell.strip().lower() in PLACEHOLDERS
                                       for c, cell, _ in faults)
    widened = tuple(columns[i] for i, width in enumerate(widths) if width > 1)
    return _Reading(tuple(cells), frozenset(rejoined), widened, faults[0][2] if faults else None, placements,
                    uncertain, placeholder)


def _readings(raw: Sequence[str], columns: Sequence[Column], extra: int) -> Iterator[_Reading]:
    """One reading per way of sharing the ``extra`` fields between the runs of free-text columns (the
    only choice that can move a non-text column), in order of the extra fields kept furthest right."""
    runs = _text_runs(columns)
    for shares in _compositions(extra, len(runs)):
        widths, placements, uncertain = [1] * len(columns), 1, []
        for run, share in zip(runs, shares, strict=True):
            widths[run[-1]] += share
            placements *= math.comb(share + len(run) - 1, len(run) - 1)  # boundaries inside the run
            if share and len(run) > 1:
                uncertain += [columns[i] for i in run]
        yield _reading(raw, columns, widths, placements, tuple(uncertain))


def _evidence_reading(raw: Sequence[str], columns: Sequence[Column]) -> _Reading | None:
    """The reading that rejoins exactly the raw fields starting with whitespace (CSV writers never put a
    space after a real delimiter), when it has one cell per column and widens free text only."""
    widths: list[int] = []
    for i, field in enumerate(raw):
        if i and field[:1].isspace():
            widths[-1] += 1
        else:
            widths.append(1)
    if len(widths) != len(columns) or any(w > 1 and c.kind is not ColumnKind.TEXT for w, c in zip(widths, columns)):
        return None
    return _reading(raw, columns, widths)


def _compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """Every tuple of ``parts`` non-negative integers summing to ``total``."""
    if parts == 0:
        if total == 0:
            yield ()
        return
    for first in range(total + 1):
        for rest in _compositions(total - first, parts - 1):
            yield (first, *rest)


def _names(columns: Sequence[Column], conjunction: str = "and") -> str:
    quoted = [repr(column.header) for column in columns]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {conjunction} {quoted[-1]}"


# --- cell types -------------------------------------------------------------------------------

_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CLOCK_12H = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s*m\.?", re.IGNORECASE)
_CLOCK_24H = re.compile(r"(\d{1,2}):(\d{2})")
_UNIT_IN_HEADER = re.compile(r"\(([a-z]+)\)$")


def _text(text: str) -> str:
    if not text:
        raise ValueError(text)
    return text


def _whole(text: str) -> int:
    if not _WHOLE.fullmatch(text):
        raise ValueError(text)
    return int(text.partition(".")[0])


def _number(text: str) -> float:
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    return float(text)


def _clock(text: str) -> int:
    """A time of night as minutes past 9 PM: '10:30 PM', '10pm', '22:30', 'midnight' or minutes."""
    if text.lower() == "midnight":
        return 180
    if match := _CLOCK_12H.fullmatch(text):
        hour, minute, meridiem = match.groups()
        return clock_to_minutes_past_9pm(int(hour), int(minute or 0), f"{meridiem}M")
    if (match := _CLOCK_24H.fullmatch(text)) and int(match[1]) <= 23:
        hour = int(match[1])
        return clock_to_minutes_past_9pm(hour % 12 or 12, int(match[2]), "PM" if hour >= 12 else "AM")
    return _whole(text)


def _iso_datetime(text: str) -> str:
    datetime.fromisoformat(text)
    return text


_PARSERS = {ColumnKind.ID: _text, ColumnKind.TEXT: _text, ColumnKind.CATEGORY: _text, ColumnKind.INT: _whole,
            ColumnKind.FLOAT: _number, ColumnKind.CLOCK: _clock, ColumnKind.DATETIME: _iso_datetime}
_EXPECTED = {ColumnKind.ID: "a non-empty case id", ColumnKind.TEXT: "non-empty text",
             ColumnKind.CATEGORY: "a non-empty category", ColumnKind.INT: "a whole number",
             ColumnKind.FLOAT: "a number", ColumnKind.CLOCK: "a clock time such as '10:30 PM' or '22:30'",
             ColumnKind.DATETIME: "an ISO date such as '2025-03-29' or '2025-03-29 07:48:10'"}


def _type_error(column: Column, cell: str) -> str | None:
    """Why ``cell`` is not a valid value for ``column``, or None when it is."""
    try:
        _PARSERS[column.kind](cell.strip())
    except ValueError:
        expected = _EXPECTED[column.kind]
        if column.kind is ColumnKind.INT and (unit := _UNIT_IN_HEADER.search(column.header)):
            expected += f" of {unit[1]}"
        shown = repr(cell.strip()) if cell.strip() else "empty"
        return f"{column.header!r} is {shown}, expected {expected}"
    return None


def _typed(column: Column, cell: str) -> Any:
    if error := _type_error(column, cell):
        raise _Refused(error)
    return _PARSERS[column.kind](cell.strip())


# --- anchors and scenario ---------------------------------------------------------------------


def _scenario(domain: Domain, row_number: int, source_id: str, typed: dict[str, Any]) -> Scenario:
    a, b = domain.anchors_from_csv(typed)
    low, high = domain.offer_bounds
    for name, value in (("focal anchor a", a), ("counterparty anchor b", b)):
        if not low <= value <= high:
            raise _Refused(f"{name}={value} is outside the {domain.id} offer bounds {low}…{high} ({domain.unit})",
                           "anchors: out of bounds")
    if a == b or not domain.has_polarity(a, b):
        sign, side = ("<", "below") if domain.polarity is Polarity.LOWER else (">", "above")
        raise _Refused(f"{domain.id} needs a {sign} b (the {domain.focal_role}'s anchor {side} the "
                       f"{domain.counterparty_role}'s) but got a={a}, b={b}; such rows are refused, not widened",
                       "anchors: equal" if a == b else "anchors: wrong polarity")
    unknown = typed.keys() - {field.name for field in fields(domain.scenario_type)}
    if unknown:  # a mistake in the domain module, not in the user's file
        raise TypeError(f"{domain.id} csv_columns fields {sorted(unknown)} have no field on "
                        f"{domain.scenario_type.__name__}")
    return domain.scenario(scenario_id=scenario_id(domain.id, row_number), source_id=source_id,
                           focal_anchor=a, counterparty_anchor=b, **typed)
