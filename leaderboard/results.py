"""The results files a score is computed from, checked so that the score cannot lie.

- Paths are literal files. A path that does not exist but contains a glob character (``*``, ``?``,
  ``[``) is the user's glob and is expanded here, sorted; nothing else is ever expanded (DuckDB would
  expand ``a*b.parquet`` even when that file exists, and read its neighbours too).
- The same file given twice (by any path) is refused: it would count each episode twice and narrow the
  confidence intervals.
- Every file is Parquet with a footer within its size limit and the scored columns of the episodes
  schema, of their types (a ``utility`` of strings is refused, not cast).
- Every utility is a finite number in [0, 1] (NaN would render as "–" yet sort first; inf would be
  ranked), every agreed value finite or empty; the first bad row is named.
- An episode of a policy (``focal_agent``, ``episode_id``) appears once within a file and across files; a
  repeat names both places. (The label is part of the key: ``emoneg eval --label`` scores one agent as
  several policies, e.g. an IQL selector trained on each domain, whose episode ids coincide.)

DuckDB then reads exactly the checked files: with ``read_parquet`` over their absolute paths when no
path has a glob character (its native reader is the fastest on nested turns), else as one Arrow dataset
over those paths; either way columns a file lacks read as NULL.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emoneg_bench.errors import InputError
from emoneg_bench.limits import check_parquet_footer

GLOB_CHARACTERS = "*?["
STRING_COLUMNS = ("episode_id", "task_id", "split", "domain", "persona", "focal_agent", "counterparty_agent",
                  "ending_name")
NUMBER_COLUMNS = ("utility", "agreed_value")
SEPARATOR = "\x1f"  # between the policy and the episode id of an episode's key


def expand(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files named by ``paths``: each existing path as is; a missing one with a glob character, its
    sorted matches."""
    files = []
    for given in paths:
        text = os.fspath(given)
        if os.path.lexists(text) or not any(c in text for c in GLOB_CHARACTERS):
            files.append(Path(text))
            continue
        matches = sorted(glob.glob(text))
        if not matches:
            raise InputError("no file matches this pattern; expected episodes Parquet files", file=text)
        files += [Path(m) for m in matches]
    return files


def _type_problem(name: str, kind: pa.DataType) -> str | None:
    if name in STRING_COLUMNS and not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return "text"
    if name in NUMBER_COLUMNS and not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
        return "a number"
    if name == "rounds" and not pa.types.is_integer(kind):
        return "a whole number"
    if name == "turns" and not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        return "a list of turns"
    return None


def _check_schema(path: Path, schema: pa.Schema, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in schema.names]
    if missing:
        raise InputError(f"missing columns {', '.join(missing)}; expected the episodes schema "
                         f"({', '.join(required)}, …)", file=str(path))
    for name in [*required, *(c for c in NUMBER_COLUMNS if c in schema.names and c not in required)]:
        expected = _type_problem(name, schema.field(name).type)
        if expected:
            raise InputError(f"has type {schema.field(name).type}, expected {expected}", file=str(path), field=name)


def _first_row(mask: pa.Array) -> int | None:
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _check_values(path: Path, table: pa.Table) -> None:
    """Finite utilities in [0, 1]; agreed values finite or empty."""
    utility = pc.cast(table.column("utility"), pa.float64()).combine_chunks()
    bad = pc.or_kleene(pc.is_null(utility), pc.invert(pc.is_finite(utility)))
    bad = pc.fill_null(pc.or_kleene(bad, pc.or_(pc.less(utility, 0.0), pc.greater(utility, 1.0))), True)
    row = _first_row(bad)
    if row is not None:
        value = utility[row].as_py()
        shown = "empty" if value is None else repr(value) if math.isfinite(value) else str(value)
        raise InputError(f"utility is {shown}, expected a finite number in [0, 1]; a score must not rank what "
                         "cannot be a utility", file=str(path), row=row, field="utility")
    if "agreed_value" in table.column_names:
        agreed = pc.cast(table.column("agreed_value"), pa.float64()).combine_chunks()
        row = _first_row(pc.fill_null(pc.invert(pc.is_finite(agreed)), False))
        if row is not None:
            raise InputError(f"agreed_value is {agreed[row].as_py()}, expected a finite number or empty",
                             file=str(path), row=row, field="agreed_value")


def _episode_keys(table: pa.Table, policy: str | None) -> pa.Array:
    """``focal_agent`` (or the ``policy`` every row is scored as) and ``episode_id`` of each row, as one key."""
    agents = pa.array([policy] * table.num_rows, pa.string()) if policy is not None else \
        pc.cast(table.column("focal_agent"), pa.string()).combine_chunks()
    return pc.binary_join_element_wise(agents, pc.cast(table.column("episode_id"), pa.string()).combine_chunks(),
                                       SEPARATOR)


def _check_unique(path: Path, keys: pa.Array, earlier: list[tuple[Path, pa.Array]]) -> None:
    """No episode of a policy twice in ``keys`` or in an earlier file (vectorised; rows found only to report)."""
    def said(key: str) -> str:
        agent, _, episode_id = key.partition(SEPARATOR)
        return f"episode {episode_id!r} of {agent!r}"

    if len(pc.unique(keys)) != len(keys):
        first: dict[str, int] = {}
        for row, key in enumerate(keys.to_pylist()):
            if key in first:
                raise InputError(f"{said(key)} is already on row {first[key]} of this file; an episode is scored once",
                                 file=str(path), row=row, field="episode_id")
            first[key] = row
    for other, other_keys in earlier:
        row = _first_row(pc.is_in(keys, value_set=other_keys))
        if row is not None:
            raise InputError(f"{said(keys[row].as_py())} is already in {other}; an episode is scored once",
                             file=str(path), row=row, field="episode_id")


def checked_results(paths: Sequence[str | os.PathLike] | str | os.PathLike, required: Sequence[str],
                    policy: str | None = None) -> list[Path]:
    """The files of ``paths`` after every check in the module docstring."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files = expand(paths)
    if not files:
        raise InputError("no result files given; expected one or more episodes Parquet files")
    seen: dict[tuple[int, int], Path] = {}
    earlier: list[tuple[Path, pa.Array]] = []  # the episode ids of the files checked so far
    for path in files:
        if not path.is_file():
            raise InputError("file not found; expected an episodes Parquet file", file=str(path))
        st = path.stat()
        if (st.st_dev, st.st_ino) in seen:
            raise InputError(f"is given twice (also as {seen[st.st_dev, st.st_ino]}); each file is scored once, or "
                             "every episode in it would count twice", file=str(path))
        seen[st.st_dev, st.st_ino] = path
        check_parquet_footer(path)
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"not a Parquet file ({error}); expected an episodes Parquet file", file=str(path)) from None
        _check_schema(path, schema, required)
        columns = ["episode_id", "focal_agent", "utility",
                   *(["agreed_value"] if "agreed_value" in schema.names else [])]
        try:
            table = pq.read_table(path, columns=columns)
        except (pa.ArrowException, OSError) as error:
            raise InputError(f"could not be read ({error})", file=str(path)) from None
        _check_values(path, table)
        keys = _episode_keys(table, policy)
        _check_unique(path, keys, earlier)
        earlier.append((path, keys))
    return files


def results_source(con, paths: Sequence[str | os.PathLike] | str | os.PathLike, required: Sequence[str],
                   policy: str | None = None) -> str:
    """The SQL relation over exactly the checked files, registered on the DuckDB connection ``con`` when
    needed; ``policy``: the name every episode is scored as (see ``leaderboard.scoring.score``)."""
    import pyarrow.dataset as ds

    files = [os.path.abspath(p) for p in checked_results(paths, required, policy)]
    if not any(c in f for f in files for c in GLOB_CHARACTERS):
        quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"read_parquet([{quoted}], union_by_name=true)"
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    con.register("results", ds.dataset(files, schema=schema, format="parquet"))
    return "results"
