"""Reading and writing scenario tables (Parquet or CSV, chosen by extension), atomically."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .domains.base import Scenario, get_domain
from .errors import InputError

FORMATS = (".parquet", ".csv")


def check_output_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix not in FORMATS:
        raise InputError(f"unsupported output format {path.suffix or '(none)'!r}; use .parquet or .csv", file=str(path))
    if path.parent and not path.parent.exists():
        raise InputError("the output folder does not exist", file=str(path.parent))
    return path


def write_rows(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write ``rows`` to ``path`` (Parquet or CSV by extension) via a temporary file and rename."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = check_output_path(path)
    table = pa.Table.from_pylist(list(rows))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if path.suffix == ".parquet":
            pq.write_table(table, tmp)
        else:
            pa_csv.write_csv(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_scenarios(scenarios: Sequence[Scenario], path: str | os.PathLike) -> Path:
    if not scenarios:
        raise InputError("no scenarios to write", file=str(path))
    return write_rows([s.to_record() for s in scenarios], path)


def read_scenarios(path: str | os.PathLike) -> list[Scenario]:
    """Scenarios from a file written by :func:`write_scenarios` (any domain mix)."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise InputError("no such scenario file", file=str(path))
    if path.suffix not in FORMATS:
        raise InputError("scenario files are .parquet or .csv", file=str(path))
    table = pq.read_table(path) if path.suffix == ".parquet" else pa_csv.read_csv(path)
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
        scenarios.append(domain.scenario(**fields))
    return scenarios
