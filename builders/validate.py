"""Check a release folder before anyone trusts or publishes it.

A release is valid when it is exactly what ``emoneg build`` writes: the card, manifest and changelog, and
Parquet shards whose bytes, row counts, names and features agree with the manifest, the card and
:mod:`emoneg_bench.schema` — and whose splits keep the test scenarios and the held-out counterparties
out of everything a policy trains on, and whose decision rows (transitions, sft) are all of the side the
teacher played. Every problem is reported, not only the first; shard contents are read with DuckDB one
file at a time, so a release of any size is checked in bounded memory.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from emoneg_bench import schema
from emoneg_bench.errors import EmoNegError, InputError
from emoneg_bench.hashing import sha256_file
from emoneg_bench.integrity import data_files_pattern
from emoneg_bench.limits import MAX_BYTES, check_parquet_footer

from .card import CARD, CHANGELOG, MANIFEST

TRAJECTORY_CONFIGS = ("episodes", "transitions", "sft")
DEFAULT_CONFIG = "episodes"
SHARD_NAME = re.compile(r"^(?P<split>\w+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
# Loading these runs code or opens a database: a dataset repository has no reason to carry them.
REFUSED_SUFFIXES = {".pkl": "a pickle", ".pickle": "a pickle", ".joblib": "a pickle (joblib)",
                    ".duckdb": "a DuckDB database"}
EXECUTABLE_MAGIC = (b"\x7fELF", b"#!", b"MZ", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
SHOWN = 3  # offending values quoted in one message


@dataclass(frozen=True)
class Problem:
    where: str  # a file relative to the release, or a place in one ("README.md: configs")
    message: str  # one sentence

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Shard:
    """A well-named, readable Parquet file of the release."""

    path: Path
    name: str  # relative to the release, with forward slashes
    config: str
    split: str
    index: int
    count: int
    rows: int


def validate_release(path: str | Path) -> list[Problem]:
    """Every problem of the release folder at ``path``; an empty list means it is valid."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("no release folder here (it does not exist or is not a folder)", file=str(root))
    problems: list[Problem] = []
    parquet = _walk(root, problems)
    card = _read_card(root, problems)
    manifest = _read_manifest(root, problems)
    shards = _shards(root, parquet, problems)
    _check_shard_sets(shards, problems)
    if manifest is not None:
        _check_manifest(root, parquet, shards, manifest, problems)
    if card is not None:
        _check_card(card, shards, problems)
    _check_features(shards, problems)
    _check_splits(shards, problems)
    _check_roles(shards, manifest, problems)
    _check_version(root, card, manifest, problems)
    return problems


def _quote(values) -> str:
    values = sorted(values)
    shown = ", ".join(repr(v) for v in values[:SHOWN])
    return shown + (f" and {len(values) - SHOWN} more" if len(values) > SHOWN else "")


# ------------------------------------------------------------------------------------------ files

def _walk(root: Path, problems: list[Problem]) -> list[str]:
    """Refuse links, pickles, databases, executables and unexpected files; return the Parquet files."""
    parquet = []
    for folder, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                problems.append(Problem(rel, "is a symbolic link; a release holds plain files only"))
            elif stat.S_ISDIR(mode):
                continue
            elif not stat.S_ISREG(mode):
                problems.append(Problem(rel, "is not a plain file; a release holds plain files only"))
            elif path.suffix.lower() in REFUSED_SUFFIXES:
                problems.append(Problem(rel, f"is {REFUSED_SUFFIXES[path.suffix.lower()]}, which is refused in "
                                             "a release because loading it can run code"))
            elif mode & 0o111 or _starts_like_executable(path):
                problems.append(Problem(rel, "is executable; a release holds data files only"))
            elif rel.startswith("data/") and name.endswith(".parquet"):
                parquet.append(rel)
            elif rel not in (CARD, MANIFEST, CHANGELOG):
                problems.append(Problem(rel, f"is not part of a release (expected only {CARD}, {MANIFEST}, "
                                             f"{CHANGELOG} and data/<config>/<split>-*.parquet)"))
    for required in (CARD, MANIFEST, CHANGELOG):
        if not (root / required).is_file():
            problems.append(Problem(required, "is missing"))
    return sorted(parquet)


def _starts_like_executable(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4).startswith(EXECUTABLE_MAGIC)


def _read_card(root: Path, problems: list[Problem]) -> dict | None:
    import yaml

    path = root / CARD
    if not path.is_file() or path.is_symlink():
        return None
    if path.stat().st_size > MAX_BYTES["card"]:
        problems.append(Problem(CARD, f"is over the {MAX_BYTES['card']:,}-byte limit for a dataset card; not parsed"))
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"---\n(.*?\n)---\n", text, flags=re.DOTALL)
    if not match:
        problems.append(Problem(CARD, "has no YAML front matter (a block between two '---' lines at the top)"))
        return None
    try:
        front = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        problems.append(Problem(CARD, f"front matter is not valid YAML ({str(error).splitlines()[0]})"))
        return None
    if not isinstance(front, dict):
        problems.append(Problem(CARD, "front matter is not a YAML mapping"))
        return None
    return front


def _read_manifest(root: Path, problems: list[Problem]) -> dict | None:
    path = root / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    if path.stat().st_size > MAX_BYTES["manifest"]:
        problems.append(Problem(MANIFEST, f"is over the {MAX_BYTES['manifest']:,}-byte limit for a manifest; not "
                                          "parsed"))
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problems.append(Problem(MANIFEST, f"is not valid JSON ({error})"))
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards"), dict):
        problems.append(Problem(MANIFEST, "has no `shards` mapping of file → config, split, rows, sha256"))
        return None
    return manifest


def _shards(root: Path, parquet: list[str], problems: list[Problem]) -> list[Shard]:
    import pyarrow.parquet as pq

    shards = []
    for rel in parquet:
        parts = rel.split("/")
        match = SHARD_NAME.match(parts[-1])
        if len(parts) != 3 or parts[1] not in schema.CONFIGS:
            problems.append(Problem(rel, f"is not in a config folder data/<config>/ (configs: "
                                         f"{', '.join(schema.CONFIGS)})"))
            continue
        if not match or int(match["index"]) >= int(match["count"]):
            problems.append(Problem(rel, "is not named <split>-<i:05d>-of-<n:05d>.parquet with i < n"))
            continue
        try:
            check_parquet_footer(root / rel)
            rows = pq.ParquetFile(root / rel).metadata.num_rows
        except Exception as error:  # pyarrow raises several types for a damaged file
            problems.append(Problem(rel, f"is not a readable Parquet file ({error})"))
            continue
        shards.append(Shard(root / rel, rel, parts[1], match["split"], int(match["index"]), int(match["count"]),
                            rows))
    return shards


def _check_shard_sets(shards: list[Shard], problems: list[Problem]) -> None:
    groups: dict[tuple[str, str], list[Shard]] = defaultdict(list)
    for shard in shards:
        groups[shard.config, shard.split].append(shard)
    for (config, split), group in sorted(groups.items()):
        counts = {s.count for s in group}
        where = f"data/{config}/{split}-*"
        if len(counts) > 1:
            problems.append(Problem(where, f"mixes shard counts {_quote(counts)}; one split has one -of-N"))
            continue
        missing = set(range(counts.pop())) - {s.index for s in group}
        if missing:
            problems.append(Problem(where, f"is incomplete: shard numbers {_quote(missing)} are missing"))


def _check_manifest(root: Path, parquet: list[str], shards: list[Shard], manifest: dict,
                    problems: list[Problem]) -> None:
    listed: dict = manifest["shards"]
    by_name = {s.name: s for s in shards}
    for rel in parquet:
        if rel not in listed:
            problems.append(Problem(rel, f"is not listed in {MANIFEST} shards"))
    for rel, entry in sorted(listed.items()):
        if rel not in parquet:
            problems.append(Problem(MANIFEST, f"lists {rel}, which is not in the release"))
            continue
        if not isinstance(entry, dict) or not {"config", "split", "rows", "sha256"} <= entry.keys():
            problems.append(Problem(MANIFEST, f"entry for {rel} lacks config, split, rows or sha256"))
            continue
        digest = sha256_file(root / rel)
        if digest != entry["sha256"]:
            problems.append(Problem(rel, f"sha256 is {digest[:12]}…, {MANIFEST} says {str(entry['sha256'])[:12]}…: "
                                         "the file changed after the build"))
        shard = by_name.get(rel)
        if shard is None:
            continue
        if shard.rows != entry["rows"]:
            problems.append(Problem(rel, f"has {shard.rows} rows, {MANIFEST} says {entry['rows']}"))
        if (entry["config"], entry["split"]) != (shard.config, shard.split):
            problems.append(Problem(rel, f"{MANIFEST} files it under config {entry['config']!r} split "
                                         f"{entry['split']!r}, but its path says {shard.config!r} {shard.split!r}"))


# ------------------------------------------------------------------------------------------ card

def _check_card(card: dict, shards: list[Shard], problems: list[Problem]) -> None:
    on_disk: dict[tuple[str, str], list[Shard]] = defaultdict(list)
    for shard in shards:
        on_disk[shard.config, shard.split].append(shard)
    _check_card_configs(card.get("configs"), on_disk, [s.name for s in shards], problems)
    _check_dataset_info(card.get("dataset_info"), on_disk, problems)


def _check_card_configs(configs, on_disk: dict, names: list[str], problems: list[Problem]) -> None:
    where = f"{CARD}: configs"
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        problems.append(Problem(where, "is missing or not a list of {config_name, data_files}"))
        return
    covered = set()
    for entry in configs:
        config = entry.get("config_name")
        data_files = entry.get("data_files")
        if isinstance(data_files, str | dict):
            data_files = [data_files]
        if not isinstance(data_files, list) or not all(isinstance(d, dict) and "split" in d for d in data_files):
            problems.append(Problem(where, f"config {config!r} has no data_files list of {{split, path}}"))
            continue
        for item in data_files:
            globs = item.get("path") if isinstance(item.get("path"), list) else [item.get("path")]
            matched = {n for n in names for g in globs if isinstance(g, str) and data_files_pattern(g).match(n)}
            expected = {s.name for s in on_disk.get((config, item["split"]), [])}
            covered.add((config, item["split"]))
            if matched != expected:
                wrong = matched - expected or expected - matched
                problems.append(Problem(where, f"config {config!r} split {item['split']!r} matches {len(matched)} "
                                               f"files, expected the {len(expected)} of that split "
                                               f"(differs on {_quote(wrong)})"))
    for config, split in sorted(on_disk.keys() - covered):
        problems.append(Problem(where, f"does not declare config {config!r} split {split!r}, which has files"))
    defaults = [c.get("config_name") for c in configs if c.get("default")]
    if defaults != [DEFAULT_CONFIG]:
        problems.append(Problem(where, f"the default config must be {DEFAULT_CONFIG!r} alone, found {defaults}"))


def _check_dataset_info(info, on_disk: dict, problems: list[Problem]) -> None:
    where = f"{CARD}: dataset_info"
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list) or not all(isinstance(i, dict) for i in info):
        problems.append(Problem(where, "is missing or not a list of per-config entries"))
        return
    entries = {i.get("config_name"): i for i in info}
    for config in sorted({c for c, _ in on_disk} - entries.keys()):
        problems.append(Problem(where, f"has no entry for config {config!r}"))
    for config, entry in entries.items():
        if config not in schema.CONFIGS:
            problems.append(Problem(where, f"describes unknown config {config!r}"))
            continue
        if entry.get("features") != schema.features(config)._to_yaml_list():
            problems.append(Problem(where, f"features of {config!r} differ from the schema in emoneg_bench.schema"))
        splits = {s.get("name"): s for s in entry.get("splits") or [] if isinstance(s, dict)}
        real = {split: group for (c, split), group in on_disk.items() if c == config}
        for split in sorted(splits.keys() - real.keys()):
            problems.append(Problem(where, f"lists split {split!r} of {config!r}, which has no files"))
        for split in sorted(real.keys() - splits.keys()):
            problems.append(Problem(where, f"does not list split {split!r} of {config!r}"))
        total = 0
        for split in sorted(real.keys() & splits.keys()):
            rows = sum(s.rows for s in real[split])
            size = sum(s.path.stat().st_size for s in real[split])
            total += size
            if splits[split].get("num_examples") != rows:
                problems.append(Problem(where, f"{config}/{split} num_examples is "
                                               f"{splits[split].get('num_examples')}, the files have {rows} rows"))
            if splits[split].get("num_bytes") != size:
                problems.append(Problem(where, f"{config}/{split} num_bytes is {splits[split].get('num_bytes')}, "
                                               f"the files have {size} bytes"))
        if real.keys() == splits.keys() and (entry.get("download_size"), entry.get("dataset_size")) != (total, total):
            problems.append(Problem(where, f"download_size/dataset_size of {config!r} are not the {total} bytes "
                                           "of its files"))


# ------------------------------------------------------------------------------------------ contents

def _check_features(shards: list[Shard], problems: list[Problem]) -> None:
    import pyarrow.parquet as pq
    from datasets import Features

    for shard in shards:
        arrow_schema = pq.read_schema(shard.path)
        if not arrow_schema.metadata or b"huggingface" not in arrow_schema.metadata:
            problems.append(Problem(shard.name, "has no embedded Hugging Face features (schema metadata key "
                                                "'huggingface')"))
            continue
        found, expected = Features.from_arrow_schema(arrow_schema), schema.features(shard.config)
        if found == expected and list(found) == list(expected):
            continue
        differences = [f"{c} is {found[c]!r}" for c in expected if c in found and found[c] != expected[c]]
        differences += [f"{c} is missing" for c in expected if c not in found]
        differences += [f"{c} is extra" for c in found if c not in expected]
        problems.append(Problem(shard.name, f"features differ from the {shard.config!r} schema: "
                                            f"{'; '.join(differences[:SHOWN]) or 'columns are out of order'}"))


def _check_splits(shards: list[Shard], problems: list[Problem]) -> None:
    """Test scenarios never in a trajectory; train and validation apart; test tasks use the right personas."""
    import duckdb

    from emoneg_bench.agents.personas import get_persona

    con = duckdb.connect()

    def distinct(shard: Shard, *columns: str) -> set:
        try:
            rows = con.execute(f"SELECT DISTINCT {', '.join(columns)} FROM read_parquet(?)",
                               [str(shard.path)]).fetchall()
        except duckdb.Error as error:
            problems.append(Problem(shard.name, f"could not be read ({str(error).splitlines()[0]})"))
            return set()
        return {row if len(columns) > 1 else row[0] for row in rows}

    def of(config: str, *splits: str) -> list[Shard]:
        return [s for s in shards if s.config == config and s.split in splits]

    if not of("scenarios", "test"):
        problems.append(Problem("data/scenarios/test-*", "is missing, so test scenarios cannot be kept out of "
                                                          "the trajectories"))
        return
    test = set().union(*(distinct(s, "scenario_id") for s in of("scenarios", "test")))
    seen: dict[str, set] = {"train": set(), "validation": set()}
    validation_shards = []
    for shard in [s for s in shards if s.config in TRAJECTORY_CONFIGS]:
        ids = distinct(shard, "scenario_id")
        if ids & test:
            problems.append(Problem(shard.name, f"contains test scenarios {_quote(ids & test)}; test scenarios "
                                                "must never appear in a trajectory"))
        if shard.split in seen:
            seen[shard.split] |= ids
            if shard.split == "validation":
                validation_shards.append((shard, ids))
    for shard, ids in validation_shards:
        if ids & seen["train"]:
            problems.append(Problem(shard.name, f"shares scenarios {_quote(ids & seen['train'])} with the train "
                                                "split; train and validation must be disjoint"))
    for split, held_out in (("test", False), ("test_unseen_counterparty", True)):
        for shard in of("tasks", split):
            pairs = distinct(shard, "scenario_id", "persona")
            outside = {scenario for scenario, _ in pairs} - test
            if outside:
                problems.append(Problem(shard.name, f"uses scenarios outside the test split: {_quote(outside)}"))
            wrong = set()
            for persona in {persona for _, persona in pairs}:
                try:
                    if get_persona(persona).held_out != held_out:
                        wrong.add(persona)
                except EmoNegError:
                    wrong.add(persona)
            if wrong:
                kind = "held-out" if held_out else "training"
                problems.append(Problem(shard.name, f"uses personas that are not {kind} personas: {_quote(wrong)}"))


def _check_roles(shards: list[Shard], manifest: dict | None, problems: list[Problem]) -> None:
    """Decision rows (transitions, sft) are all of the side the teacher played: the builder config's
    ``teacher_role``, focal when the manifest does not say (releases built before the field existed)."""
    import duckdb

    config = (manifest or {}).get("builder_config")
    role = config.get("teacher_role", "focal") if isinstance(config, dict) else "focal"
    con = duckdb.connect()
    for shard in [s for s in shards if s.config in ("transitions", "sft")]:
        try:
            found = {str(row[0]) for row in con.execute("SELECT DISTINCT role FROM read_parquet(?)",
                                                        [str(shard.path)]).fetchall()}
        except duckdb.Error:
            continue  # an unreadable or role-less shard is already reported by the features check
        if found - {role}:
            problems.append(Problem(shard.name, f"has decisions of role {_quote(found - {role})}; this release's "
                                                f"teacher played {role!r} ({MANIFEST} builder_config.teacher_role)"))


def _check_version(root: Path, card: dict | None, manifest: dict | None, problems: list[Problem]) -> None:
    if manifest is None:
        return
    version = manifest.get("version")
    if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        problems.append(Problem(MANIFEST, f"version must be a semantic version like 1.0.0, got {version!r}"))
        return
    if not root.resolve().name.endswith(f"-v{version}"):
        problems.append(Problem(".", f"the folder name {root.resolve().name!r} does not end with -v{version}, "
                                     f"the version in {MANIFEST}"))
    if card is not None:
        stated = re.search(r"(\d+\.\d+\.\d+)\s*$", str(card.get("pretty_name", "")))
        if not stated or stated.group(1) != version:
            problems.append(Problem(f"{CARD}: pretty_name", f"does not end with version {version} of {MANIFEST}"))
    changelog = root / CHANGELOG
    if changelog.is_file() and not changelog.is_symlink():
        headings = re.findall(r"^## +(\S+)", changelog.read_text(encoding="utf-8", errors="replace"), re.MULTILINE)
        if not headings or headings[0] != version:
            problems.append(Problem(CHANGELOG, f"its latest entry is not ## {version}, the version in {MANIFEST}"))
