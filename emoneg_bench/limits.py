"""Size limits checked before a file is parsed.

A parser's cost follows its input: a 20 MB YAML file takes minutes and gigabytes before any check on
its content can run, and a Parquet file announces the size of its footer (the schema and row-group
metadata read before any data) in its last eight bytes. Every reader of a user-supplied file asks here
first, so a file too large for its purpose is one ``error:`` line that costs a ``stat``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError

KIB, MIB = 2**10, 2**20
# What each kind of file may weigh. Generous for what the toolkit writes (a default release's card is
# ~22 KB, its manifest ~8 KB, its Parquet footers ~30 KB), small next to what would hurt.
MAX_BYTES = {
    "manifest": 16 * MIB,  # MANIFEST.json of a release
    "card": 4 * MIB,  # a release's README.md (dataset card with YAML front matter)
    "build config": 1 * MIB,  # a builder config YAML
    "run metadata": 16 * MIB,  # iql.json, training.json, entry.json
    "scenario csv": 64 * MIB,  # a published scenario CSV to import
    "parquet footer": 16 * MIB,  # the metadata block at the end of any Parquet file
}
PARQUET_MAGIC = b"PAR1"


def check_size(path: str | os.PathLike, kind: str, limit: int | None = None) -> int:
    """The size of the plain file at ``path``; an error naming it when it is larger than ``kind`` allows."""
    limit = MAX_BYTES[kind] if limit is None else limit
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("no such file", file=str(path)) from None
    if not path.is_file():
        raise InputError(f"is not a plain file; expected a {kind}", file=str(path))
    if size > limit:
        raise InputError(f"is {size:,} bytes, over the {limit:,}-byte limit for a {kind}; refused before "
                         "parsing", file=str(path))
    return size


def read_limited(path: str | os.PathLike, kind: str, limit: int | None = None) -> bytes:
    """The bytes of ``path`` when it is within ``kind``'s limit (checked before reading, and again while
    reading, so a file that grows in between cannot slip through)."""
    limit = MAX_BYTES[kind] if limit is None else limit
    check_size(path, kind, limit)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"grew past the {limit:,}-byte limit for a {kind} while being read", file=str(path))
    return data


def read_text_limited(path: str | os.PathLike, kind: str, limit: int | None = None) -> str:
    try:
        return read_limited(path, kind, limit).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"is not UTF-8 text (byte {error.start}); expected a {kind}", file=str(path)) from None


def check_parquet_footer(path: str | os.PathLike, limit: int | None = None) -> None:
    """Refuse a file that does not end like Parquet, or whose footer is larger than the limit or than the
    file itself, before pyarrow or DuckDB allocate for it."""
    limit = MAX_BYTES["parquet footer"] if limit is None else limit
    size = check_size(path, "parquet file", limit=2**63)
    if size < 12:
        raise InputError(f"is not a Parquet file ({size} bytes, too short for one)", file=str(path))
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(size - 8)
        tail = handle.read(8)
    if head != PARQUET_MAGIC or tail[4:] != PARQUET_MAGIC:
        raise InputError("is not a Parquet file (it does not start and end with PAR1)", file=str(path))
    footer = int.from_bytes(tail[:4], "little")
    if footer > size - 12:
        raise InputError(f"announces a {footer:,}-byte Parquet footer in a {size:,}-byte file; the file is "
                         "damaged", file=str(path))
    if footer > limit:
        raise InputError(f"has a {footer:,}-byte Parquet footer, over the {limit:,}-byte limit; refused before "
                         "parsing", file=str(path))


def read_json(path: str | os.PathLike, kind: str) -> Any:
    """The parsed JSON of ``path``, within ``kind``'s size limit; one error naming the file otherwise."""
    try:
        return json.loads(read_limited(path, kind))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"is not valid JSON ({getattr(error, 'msg', error)}); expected a {kind}",
                         file=str(path)) from None
