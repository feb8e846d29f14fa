"""Verifying a release before anything reads it: the one door every consumer goes through.

:func:`verify_release` checks, and refuses with one sentence naming the file at the first problem:

1. ``MANIFEST.json``: within its size limit, a JSON object of the manifest format this toolkit reads
   (format 1: no ``format`` key, or ``format: 1``; release ``version`` major 1), with the fields readers
   need (``release``, ``version``, ``builder_config.max_turns``, ``shards``) and one well-formed entry
   per shard (``data/<config>/<split>-<i>-of-<n>.parquet`` → config, split, rows, sha256), every
   ``-of-n`` set complete.
2. The files under ``data/``: exactly the manifest's shards, plain files (no links, nothing extra a
   ``data_files`` glob could pick up), each with the sha256 the manifest records. Digests are streamed
   and cached per file by (device, inode, size, mtime, ctime), so a second open re-hashes nothing; any
   write to a file changes its ctime, even one that puts the mtime back.
3. The dataset card (``README.md``): its YAML ``configs`` declare every (config, split) of the manifest
   and their ``data_files`` globs match exactly that split's shards, so ``datasets.load_dataset`` reads
   the verified files and nothing else; its ``dataset_info`` sizes and row counts are the files'.
4. What the caller asked for: the ``configs`` (and ``split``) it is about to read exist.

:func:`release_cache_key` derives a cache key from the verified shard digests: two releases with the
same name but different bytes never share a ``datasets`` cache entry.

``emoneg validate-release`` (``builders.validate``) is the exhaustive check a publisher runs (features,
split hygiene, roles, every problem listed); this is the fast one every reader runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .limits import read_limited, read_text_limited

MANIFEST, CARD = "MANIFEST.json", "README.md"
FORMAT = 1  # the manifest layout this toolkit reads; manifests written so far carry no "format" key
SUPPORTED_MAJOR = 2  # release versions this toolkit reads
# Why an older major version cannot be read, said when one is opened.
MAJOR_CHANGES = {1: "2.0 added the emotion-history state features and `utility_reward` to `transitions` and writes "
                    "`sft` in the structured action protocol"}
SHARD_NAME = re.compile(r"data/(?P<config>[a-z_]+)/(?P<split>\w+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet")
SHA256 = re.compile(r"[0-9a-f]{64}")
FRONT_MATTER = re.compile(r"---\n(.*?\n)---\n", flags=re.DOTALL)
CHECK_HINT = "run `emoneg validate-release` on it, or rebuild it with `emoneg build`"


@dataclass(frozen=True)
class Shard:
    name: str  # relative to the release, forward slashes
    config: str
    split: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class VerifiedRelease:
    """A release whose manifest, shards and card agree; ``manifest`` is its parsed ``MANIFEST.json``."""

    root: Path
    manifest: dict
    manifest_sha256: str
    shards: tuple[Shard, ...]

    def files(self, config: str, split: str) -> list[Path]:
        return [self.root / s.name for s in self.shards if (s.config, s.split) == (config, split)]

    def splits(self, config: str) -> list[str]:
        return sorted({s.split for s in self.shards if s.config == config})

    @property
    def content_key(self) -> str:
        """sha256 over the shards' names and digests: equal keys mean equal data files."""
        lines = "".join(f"{s.name}\0{s.sha256}\n" for s in sorted(self.shards, key=lambda s: s.name))
        return hashlib.sha256(lines.encode()).hexdigest()


# Within one process, a release whose files have not changed (same stat signatures) is verified once.
_VERIFIED: dict[tuple, VerifiedRelease] = {}


def verify_release(release_dir: str | os.PathLike, configs: tuple[str, ...] = (),
                   split: str | None = None) -> VerifiedRelease:
    """The verified release at ``release_dir`` holding ``configs`` (each with ``split`` when given);
    otherwise an :class:`InputError` naming the first file that is wrong (see the module docstring)."""
    root = Path(release_dir)
    if not root.is_dir():
        raise InputError("no release folder here (it does not exist or is not a folder)", file=str(root))
    if not (root / MANIFEST).is_file():
        raise InputError(f"{root} is not a release folder: it has no {MANIFEST}")
    on_disk = _data_files(root)
    signature = (str(root.resolve()), _stat_key(root / MANIFEST), _stat_key(root / CARD),
                 tuple(sorted((name, key) for name, key in on_disk.items())))
    release = _VERIFIED.get(signature)
    if release is None:
        release = _verify(root, on_disk)
        _VERIFIED.clear()  # one entry per process is what repeated opens need; never grows
        _VERIFIED[signature] = release
    _check_requested(release, configs, split)
    return release


def _verify(root: Path, on_disk: dict[str, tuple]) -> VerifiedRelease:
    raw = read_limited(root / MANIFEST, "manifest")
    manifest = _parse_manifest(raw, root / MANIFEST)
    shards = _manifest_shards(manifest, root / MANIFEST)
    _check_files_match(root, shards, on_disk)
    _check_digests(root, shards, on_disk)
    _check_card(root, shards, on_disk)
    return VerifiedRelease(root, manifest, hashlib.sha256(raw).hexdigest(), shards)


# ------------------------------------------------------------------------------------------ manifest

def _parse_manifest(raw: bytes, path: Path) -> dict:
    where = str(path)
    try:
        manifest = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"is not valid JSON ({getattr(error, 'msg', error)}); {CHECK_HINT}", file=where) from None
    if not isinstance(manifest, dict):
        raise InputError(f"is not a JSON object; {CHECK_HINT}", file=where)
    layout = manifest.get("format", FORMAT)
    if layout != FORMAT:
        raise InputError(f"has manifest format {layout!r}; this toolkit reads format {FORMAT} (upgrade "
                         "emoneg-bench to read this release)", file=where, field="format")
    version = manifest.get("version")
    major = str(version).split(".")[0]
    if not isinstance(version, str) or not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        why = MAJOR_CHANGES.get(int(major)) if major.isdigit() else None
        raise InputError(f"release {manifest.get('release', path.parent.name)} has version {version or 'none'}; "
                         f"this toolkit reads version {SUPPORTED_MAJOR}.x releases"
                         + (f" ({why}; rebuild it with `emoneg build`, or read it with `datasets` alone)" if why else ""),
                         file=where, field="version")
    if not isinstance(manifest.get("release"), str) or not manifest["release"]:
        raise InputError(f"has no release name; {CHECK_HINT}", file=where, field="release")
    builder = manifest.get("builder_config")
    turns = builder.get("max_turns") if isinstance(builder, dict) else None
    if not isinstance(turns, int) or isinstance(turns, bool) or turns < 2:
        raise InputError(f"has no builder_config.max_turns (a whole number ≥ 2); {CHECK_HINT}", file=where,
                         field="builder_config")
    return manifest


def _manifest_shards(manifest: dict, path: Path) -> tuple[Shard, ...]:
    where = str(path)
    listed = manifest.get("shards")
    if not isinstance(listed, dict) or not listed:
        raise InputError(f"lists no shards (expected a `shards` mapping of file → config, split, rows, sha256); "
                         f"{CHECK_HINT}", file=where, field="shards")
    shards, sets = [], defaultdict(set)
    for name, entry in sorted(listed.items()):
        match = SHARD_NAME.fullmatch(name)
        if not match or int(match["index"]) >= int(match["count"]):
            raise InputError(f"lists {name!r}, which is not data/<config>/<split>-<i:05d>-of-<n:05d>.parquet "
                             "with i < n", file=where, field="shards")
        if not isinstance(entry, dict):
            raise InputError(f"entry for {name} is not an object", file=where, field="shards")
        rows, digest = entry.get("rows"), entry.get("sha256")
        if (entry.get("config"), entry.get("split")) != (match["config"], match["split"]):
            raise InputError(f"files {name} under config {entry.get('config')!r} split {entry.get('split')!r}, "
                             "but its path says otherwise", file=where, field="shards")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise InputError(f"entry for {name} has rows {rows!r}, expected a whole number", file=where,
                             field="shards")
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            raise InputError(f"entry for {name} has no sha256 (64 lowercase hex digits)", file=where, field="shards")
        shards.append(Shard(name, match["config"], match["split"], rows, digest))
        sets[match["config"], match["split"]].add((int(match["index"]), int(match["count"])))
    for (config, split), members in sorted(sets.items()):
        counts = {count for _, count in members}
        expected = {(i, count) for count in counts for i in range(count)}
        if len(counts) > 1 or members != expected:
            missing = sorted(f"{split}-{i:05d}-of-{n:05d}.parquet" for i, n in expected - members)
            raise InputError(f"lists an incomplete shard set for data/{config}/{split}-*: "
                             f"{', '.join(missing[:3]) or 'mixed -of-N counts'} missing; {CHECK_HINT}",
                             file=where, field="shards")
    return tuple(shards)


# ------------------------------------------------------------------------------------------ files

def _stat_key(path: Path) -> tuple | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return (st.st_mode, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _data_files(root: Path) -> dict[str, tuple]:
    """Every entry under ``data/`` that is not a folder, by relative name, with its stat key."""
    found = {}
    for folder, dirnames, filenames in os.walk(root / "data"):
        for name in [*dirnames, *filenames]:
            path = Path(folder) / name
            key = _stat_key(path)
            if key is not None and not stat.S_ISDIR(key[0]):
                found[path.relative_to(root).as_posix()] = key
    return found


def _check_files_match(root: Path, shards: tuple[Shard, ...], on_disk: dict[str, tuple]) -> None:
    listed = {s.name for s in shards}
    for name in sorted(listed - on_disk.keys()):
        raise InputError(f"is missing; {MANIFEST} lists it as a shard of this release ({CHECK_HINT})",
                         file=str(root / name))
    for name in sorted(on_disk.keys() - listed):
        raise InputError(f"is not listed in {MANIFEST}; a file the manifest does not vouch for would be read as "
                         "part of the release (remove it)", file=str(root / name))
    for name in sorted(listed):
        if not stat.S_ISREG(on_disk[name][0]):
            raise InputError("is not a plain file (a link or a special file); a release holds plain files only",
                             file=str(root / name))


def _check_digests(root: Path, shards: tuple[Shard, ...], on_disk: dict[str, tuple]) -> None:
    cache = _DigestCache(root)
    try:
        for shard in shards:
            digest = cache.sha256(shard.name, on_disk[shard.name])
            if digest != shard.sha256:
                raise InputError(f"sha256 is {digest[:12]}…, {MANIFEST} says {shard.sha256[:12]}…: the file changed "
                                 f"after the build and this release cannot be trusted ({CHECK_HINT})",
                                 file=str(root / shard.name))
    finally:
        cache.save()


class _DigestCache:
    """sha256 of a release's files by stat key, kept in ``$EMONEG_CACHE/release-digests/`` (one small JSON
    file per release folder). It only ever says what a file's bytes hash to, never what they should hash
    to, so a stale or edited entry can cost a re-hash but cannot make a changed file pass."""

    def __init__(self, root: Path):
        from .cache import cache_dir

        folder_id = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
        self.root = root
        self.path = cache_dir() / "release-digests" / f"{folder_id}.json"
        self.entries: dict[str, dict] = {}
        self.changed = False
        try:
            loaded = json.loads(read_limited(self.path, "run metadata"))
            if isinstance(loaded, dict):
                self.entries = {k: v for k, v in loaded.items() if isinstance(v, dict)}
        except (InputError, ValueError):
            pass  # no cache yet, or an unreadable one: hash again

    def sha256(self, name: str, key: tuple) -> str:
        entry = self.entries.get(name)
        if entry and entry.get("stat") == list(key) and isinstance(entry.get("sha256"), str):
            return entry["sha256"]
        from .hashing import sha256_file

        digest = sha256_file(self.root / name)
        self.entries[name] = {"stat": list(key), "sha256": digest}
        self.changed = True
        return digest

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            with os.fdopen(fd, "w") as handle:
                json.dump(self.entries, handle, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs the next open a re-hash


# ------------------------------------------------------------------------------------------ card

def data_files_pattern(glob: str) -> re.Pattern:
    """A Hub ``data_files`` glob, relative to the repository root: ``*`` stays within one folder."""
    out = []
    for token in re.split(r"(\*\*|\*|\?)", glob):
        out.append({"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token)))
    return re.compile("".join(out) + r"\Z")


def card_front_matter(text: str, where: str) -> dict:
    """The YAML front matter of a dataset card as a mapping."""
    import yaml

    match = FRONT_MATTER.match(text)
    if not match:
        raise InputError(f"has no YAML front matter (a block between two '---' lines at the top); {CHECK_HINT}",
                         file=where)
    try:
        front = yaml.load(match.group(1), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise InputError(f"front matter is not valid YAML ({str(error).splitlines()[0]})", file=where) from None
    if not isinstance(front, dict):
        raise InputError("front matter is not a YAML mapping", file=where)
    return front


def _check_card(root: Path, shards: tuple[Shard, ...], on_disk: dict[str, tuple]) -> None:
    where = str(root / CARD)
    if not (root / CARD).is_file():
        raise InputError(f"is missing; the dataset card tells `datasets` which files each config reads "
                         f"({CHECK_HINT})", file=where)
    front = card_front_matter(read_text_limited(root / CARD, "card"), where)
    by_split: dict[tuple[str, str], list[Shard]] = defaultdict(list)
    for shard in shards:
        by_split[shard.config, shard.split].append(shard)
    _check_card_configs(front.get("configs"), by_split, where)
    _check_card_sizes(front.get("dataset_info"), by_split, on_disk, where)


def _check_card_configs(configs, by_split: dict, where: str) -> None:
    if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
        raise InputError("configs is missing or not a list of {config_name, data_files}", file=where,
                         field="configs")
    names = [s.name for group in by_split.values() for s in group]
    declared = set()
    for entry in configs:
        config, data_files = entry.get("config_name"), entry.get("data_files")
        if isinstance(data_files, dict):
            data_files = [data_files]
        if not isinstance(data_files, list) or not all(isinstance(d, dict) and "split" in d for d in data_files):
            raise InputError(f"config {config!r} has no data_files list of {{split, path}}", file=where,
                             field="configs")
        for item in data_files:
            globs = item.get("path") if isinstance(item.get("path"), list) else [item.get("path")]
            matched = {n for n in names for g in globs if isinstance(g, str) and data_files_pattern(g).match(n)}
            expected = {s.name for s in by_split.get((config, item["split"]), [])}
            if matched != expected or not expected:
                raise InputError(f"config {config!r} split {item['split']!r} reads {len(matched)} files, "
                                 f"{MANIFEST} has {len(expected)} for it; `datasets` would load other data than "
                                 f"the manifest vouches for ({CHECK_HINT})", file=where, field="configs")
            declared.add((config, item["split"]))
    for config, split in sorted(by_split.keys() - declared):
        raise InputError(f"does not declare config {config!r} split {split!r}, which {MANIFEST} lists; "
                         f"{CHECK_HINT}", file=where, field="configs")


def _check_card_sizes(info, by_split: dict, on_disk: dict[str, tuple], where: str) -> None:
    if isinstance(info, dict):
        info = [info]
    if not isinstance(info, list):
        raise InputError(f"dataset_info is missing; {CHECK_HINT}", file=where, field="dataset_info")
    stated = {}
    for entry in info:
        for split in (entry.get("splits") or []) if isinstance(entry, dict) else []:
            if isinstance(split, dict):
                stated[entry.get("config_name"), split.get("name")] = split
    for (config, split), group in sorted(by_split.items()):
        size = sum(on_disk[s.name][3] for s in group)
        rows = sum(s.rows for s in group)
        entry = stated.get((config, split), {})
        if (entry.get("num_bytes"), entry.get("num_examples")) != (size, rows):
            raise InputError(f"dataset_info gives {config}/{split} {entry.get('num_bytes')} bytes and "
                             f"{entry.get('num_examples')} rows; the files have {size} bytes and {MANIFEST} "
                             f"{rows} rows ({CHECK_HINT})", file=where, field="dataset_info")


# ------------------------------------------------------------------------------------------ request

def _check_requested(release: VerifiedRelease, configs: tuple[str, ...], split: str | None) -> None:
    for config in configs:
        splits = release.splits(config)
        if not splits:
            raise InputError(f"release {release.root} has no {config!r} config (no data/{config}/*.parquet); "
                             f"rebuild it with `emoneg build`")
        if split is not None and split not in splits:
            raise InputError(f"release {release.root} has no {split!r} split in its {config} config (it has "
                             f"{', '.join(splits)})", field="split")
