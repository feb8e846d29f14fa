"""Reading and writing scenario tables (Parquet or CSV, chosen by extension), atomically."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from .domains.base import Scenario, get_domain
from .errors import InputError
from .limits import check_parquet_footer, check_size
from .outputs import write_together

FORMATS = (".parquet", ".csv")


def check_output_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix not in FORMATS:
        raise InputError(f"unsupported output format {path.suffix or '(none)'!r}; use .parquet or .csv", file=str(path))
    if path.parent and not path.parent.exists():
        raise InputError("the output folder does not exist", file=str(path.parent))
    return path


def rows_writer(rows: Sequence[dict], suffix: str) -> Callable[[Path], None]:
    """A writer of ``rows`` as Parquet or CSV (by ``suffix``) for :func:`emoneg_bench.outputs.write_together`."""
    import pyarrow as pa

    table = pa.Table.from_pylist(list(rows))

    def write(tmp: Path) -> None:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq

        if suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            pa_csv.write_csv(table, tmp)

    return write


def write_rows(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write ``rows`` to ``path`` (Parquet or CSV by extension) via a temporary file and rename."""
    path = check_output_path(path)
    write_together({path: rows_writer(rows, path.suffix)})
    return path


def write_scenarios(scenarios: Sequence[Scenario], path: str | os.PathLike) -> Path:
    if not scenarios:
        raise InputError("no scenarios to write", file=str(path))
    return write_rows([s.to_record() for s in scenarios], path)


def read_scenarios(path: str | os.PathLike) -> list[Scenario]:
    """Scenarios from a file written by :func:`write_scenarios` (any domain mix)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError("no such scenario file", file=str(path))
    if path.suffix not in FORMATS:
        raise InputError("scenario files are .parquet or .csv", file=str(path))
    try:
        if path.suffix == ".parquet":
            check_parquet_footer(path)
            table = pq.read_table(path)
        else:
            check_size(path, "scenario csv")
            table = pa_csv.read_csv(path)
    except (pa.ArrowException, OSError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"not a readable scenario table ({detail}); expected the {path.suffix[1:]} written by "
                         "`emoneg scenarios generate` or `import`", file=str(path)) from None
    scenarios = []
    for row_number, row in enumerate(table.to_pylist(), start=1):
        if "domain" not in row:
            raise InputError("missing the 'domain' column", file=str(path))
        domain = get_domain(row["domain"])
        names = {f.name for f in dataclasses.fields(domain.scenario_type)}
        fields = {k: v for k, v in row.items() if k in names and k != "domain"}
        missing = names - set(fields) - {"domain", "source_id"} - {
            f.name for f in dataclasses.fields(domain.scenario_type) if f.default is not dataclasses.MISSING}
        if missing:
            raise InputError(f"missing fields {sorted(missing)}", file=str(path), row=row_number)
        if fields.get("source_id") is not None:
            fields["source_id"] = str(fields["source_id"])
        _check_types(domain, fields, str(path), row_number)
        scenarios.append(domain.scenario(**fields))
    return scenarios


def _check_types(domain, fields: dict, file: str, row: int) -> None:
    """Every value of the scenario's declared type (numbers finite), and anchors of the domain's polarity."""
    hints = typing.get_type_hints(domain.scenario_type)
    for name, value in fields.items():
        expected = hints.get(name)
        if value is None and (expected is str or name == "source_id"):
            continue  # a CSV reads an empty text cell as null
        if expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected is str or name == "source_id":
            ok = isinstance(value, str)
        else:
            continue
        if not ok:
            raise InputError(f"is {value!r}, expected {'a finite number' if expected is float else expected.__name__}",
                             file=file, row=row, field=name)
    a, b = fields.get("focal_anchor"), fields.get("counterparty_anchor")
    if a is not None and b is not None and not domain.has_polarity(a, b):
        raise InputError(f"anchors a={a}, b={b} do not have the {domain.id} polarity (the focal agent wants "
                         f"{domain.polarity})", file=file, row=row, field="focal_anchor")
