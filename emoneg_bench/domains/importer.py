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
its type are dropped. One reading left: imported and noted as repaired. Several left: the writer's
evidence decides — CSV writers never put a space after a real delimiter, so a raw field starting
with whitespace is a continuation; if exactly one reading rejoins precisely those fields it is
imported (noted as repaired), otherwise the row is refused as ambiguous. Fewer fields than the
header: refused.

**Anchors.** ``domain.anchors_from_csv`` gives (a, b). Both must lie within ``domain.offer_bounds``
(this also refuses a hospital b = waitlist − reduction below 0), and they must have the domain's
polarity. A row whose anchors are equal or point the wrong way is **refused, not widened**: the
file's numbers are the scenario, and inventing a gap would make up data. A Case_ID already used by
an earlier row (even one refused for its anchors) refuses the later row.
"""

from __future__ import annotations

import csv
import io
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

MAX_EXTRA_FIELDS = 6  # bounds the readings tried: at most C(6 + texts − 1, 6) per row


@dataclass(frozen=True)
class RowNote:
    """Why one data row was repaired or refused. ``row`` is 1-based, header and blank lines excluded."""

    row: int
    source_id: str
    reason: str


@dataclass(frozen=True)
class ImportResult:
    domain: str
    scenarios: tuple[Scenario, ...]
    repaired: tuple[RowNote, ...]
    rejected: tuple[RowNote, ...]


class _Refused(Exception):
    """A row that cannot be imported; the message is the reason shown to the user."""


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
            cells, repair = _split_fields(raw, columns)
            typed = {column.field: _typed(column, cell) for column, cell in zip(columns, cells, strict=True)}
            if id_column is not None:
                source_id = typed.pop(id_column.field)
                if source_id in first_row_of_id:
                    raise _Refused(f"{id_column.header!r} {source_id!r} already appeared on row "
                                   f"{first_row_of_id[source_id]}")
                first_row_of_id[source_id] = row_number
            scenarios.append(_scenario(domain, row_number, source_id, typed))
        except _Refused as refusal:
            rejected.append(RowNote(row_number, source_id, str(refusal)))
            continue
        if repair:
            repaired.append(RowNote(row_number, source_id, repair))
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
    """One way of rejoining a row's raw fields into the header's columns."""

    cells: tuple[str, ...]
    rejoined: frozenset[int]  # indices of raw fields glued onto the field before them
    widened: tuple[Column, ...]  # text columns that absorbed extra fields
    error: str | None


def _split_fields(raw: Sequence[str], columns: Sequence[Column]) -> tuple[Sequence[str], str | None]:
    """The row's cells, one per column, and a repair note when unquoted commas were rejoined."""
    extra = len(raw) - len(columns)
    if extra == 0:
        return raw, None
    if extra < 0:
        raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}")
    if extra > MAX_EXTRA_FIELDS:
        raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}: more than "
                       f"{MAX_EXTRA_FIELDS} unquoted commas is too many to repair safely")
    readings = list(_readings(raw, columns, extra))
    valid = [reading for reading in readings if reading.error is None]
    spaced = frozenset(i for i in range(1, len(raw)) if raw[i][:1].isspace())
    evidence = [reading for reading in readings if reading.rejoined == spaced]
    commas = "comma" if extra == 1 else "commas"
    if len(valid) == 1:
        return valid[0].cells, f"unquoted {commas} in {_names(valid[0].widened)} rejoined"
    if len(valid) > 1:
        if len(evidence) == 1 and evidence[0].error is None:
            return evidence[0].cells, (f"unquoted {commas} in {_names(evidence[0].widened)} rejoined, "
                                       "the only reading where each rejoined comma is followed by a space")
        candidates = [c for c in columns if any(c in reading.widened for reading in valid)]
        what = "the extra comma" if extra == 1 else f"the {extra} extra commas"
        raise _Refused(f"ambiguous: {what} could belong to {_names(candidates, 'or')}")
    if len(evidence) == 1:
        raise _Refused(f"{evidence[0].error} (after rejoining the unquoted {commas} in "
                       f"{_names(evidence[0].widened)})")
    raise _Refused(f"row has {len(raw)} fields, header has {len(columns)}, and no way of rejoining the "
                   "extra fields into free-text columns gives valid values for the other columns")


def _readings(raw: Sequence[str], columns: Sequence[Column], extra: int) -> Iterator[_Reading]:
    texts = [i for i, column in enumerate(columns) if column.kind is ColumnKind.TEXT]
    for shares in _compositions(extra, len(texts)):
        widths = [1] * len(columns)
        for column_index, share in zip(texts, shares, strict=True):
            widths[column_index] += share
        cells, rejoined, start = [], set(), 0
        for width in widths:
            cells.append(",".join(raw[start:start + width]))
            rejoined.update(range(start + 1, start + width))
            start += width
        errors = (_type_error(c, cell) for c, cell in zip(columns, cells, strict=True) if c.kind is not ColumnKind.TEXT)
        error = next((e for e in errors if e), None)
        widened = tuple(columns[i] for i, width in enumerate(widths) if width > 1)
        yield _Reading(tuple(cells), frozenset(rejoined), widened, error)


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
            raise _Refused(f"{name}={value} is outside the {domain.id} offer bounds {low}…{high} ({domain.unit})")
    if a == b or not domain.has_polarity(a, b):
        sign, side = ("<", "below") if domain.polarity is Polarity.LOWER else (">", "above")
        raise _Refused(f"{domain.id} needs a {sign} b (the {domain.focal_role}'s anchor {side} the "
                       f"{domain.counterparty_role}'s) but got a={a}, b={b}; such rows are refused, not widened")
    unknown = typed.keys() - {field.name for field in fields(domain.scenario_type)}
    if unknown:  # a mistake in the domain module, not in the user's file
        raise TypeError(f"{domain.id} csv_columns fields {sorted(unknown)} have no field on "
                        f"{domain.scenario_type.__name__}")
    return domain.scenario(scenario_id=scenario_id(domain.id, row_number), source_id=source_id,
                           focal_anchor=a, counterparty_anchor=b, **typed)
