"""Ways a release folder gets damaged or doctored, for the integrity tests: a flipped byte, a rewritten
shard, and "resealing" (recomputing the manifest digests and the card sizes after an edit, as someone
passing off a doctored release would)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml


def copy_release(release: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(release, folder / release.name))


def flip_byte(path: Path, offset: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= mask
    path.write_bytes(bytes(data))


def rewrite_shard(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """Rewrite a Parquet shard through ``change``, keeping its schema (and its embedded features)."""
    table = pq.read_table(path)
    pq.write_table(change(table).cast(table.schema), path, compression="zstd")


def scaled(column: str, factor: float) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        index = table.schema.get_field_index(column)
        field = table.schema.field(index)
        return table.set_column(index, field, pc.multiply(table.column(column), factor).cast(field.type))

    return change


def first_half(table: pa.Table) -> pa.Table:
    return table.slice(0, table.num_rows // 2)


def reseal(root: Path) -> None:
    """Make MANIFEST.json and the card's dataset_info agree with the files again."""
    manifest = json.loads((root / "MANIFEST.json").read_text())
    for name, entry in manifest["shards"].items():
        entry["sha256"] = hashlib.sha256((root / name).read_bytes()).hexdigest()
        entry["rows"] = pq.ParquetFile(root / name).metadata.num_rows
    (root / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    card = (root / "README.md").read_text()
    match = re.match(r"---\n(.*?\n)---\n", card, flags=re.DOTALL)
    front = yaml.safe_load(match.group(1))
    for info in front["dataset_info"]:
        for split in info["splits"]:
            names = [n for n, e in manifest["shards"].items()
                     if (e["config"], e["split"]) == (info["config_name"], split["name"])]
            split["num_bytes"] = sum((root / n).stat().st_size for n in names)
            split["num_examples"] = sum(manifest["shards"][n]["rows"] for n in names)
    (root / "README.md").write_text("---\n" + yaml.safe_dump(front, sort_keys=False) + "---\n" + card[match.end():])


def edit_manifest(root: Path, change: Callable[[dict], dict | str]) -> None:
    manifest = json.loads((root / "MANIFEST.json").read_text())
    changed = change(manifest)
    (root / "MANIFEST.json").write_text(changed if isinstance(changed, str) else json.dumps(changed, indent=2))
