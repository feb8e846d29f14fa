"""Validate a leaderboard submission and verify it by replay (DESIGN.md section 9).

A submission is a folder with ``submission.yaml`` and ``episodes.parquet`` (and optionally a
``README.md``) holding one episode per official ``test`` task of a release (and optionally one per
``test_unseen_counterparty`` task). :func:`validate_submission` checks the files, the metadata, the
schema and the task coverage, reporting every problem it finds; only a submission without problems
is replayed: the official counterparty (each task's persona) is re-run on the submitted focal
messages, and any counterparty message or ending that differs rejects it. Scores must be computed
from ``Report.replayed``, never from the submitted numbers.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.replay import differences, replay
from emoneg_bench.engine import Engine, Recognizer
from emoneg_bench.errors import InputError
from emoneg_bench.limits import check_parquet_footer
from emoneg_bench.negotiation import Act, Ending, Episode, Outcome, Role, Task, Utterance
from emoneg_bench.release import load_release_tasks, open_release, release_manifest
from emoneg_bench.schema import arrow_table, episode_row, features

METADATA, EPISODES, README = "submission.yaml", "episodes.parquet", "README.md"
MAX_BYTES = {EPISODES: 200 * 2**20, METADATA: 64 * 2**10, README: 1 * 2**20}
REQUIRED_FILES = (METADATA, EPISODES)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
EXECUTABLE_MAGIC = (b"\x7fELF", b"#!", b"MZ")
OFFICIAL_SPLIT, OPTIONAL_SPLITS = "test", ("test_unseen_counterparty",)
METADATA_FIELDS: dict[str, type] = {"name": str, "contact": str, "model": str, "training_data": str,
                                    "licence": str, "seeds": list, "description": str}
FLOAT_COLUMNS = ("agreed_value", "utility")
FLOAT_TURN_FIELDS = ("offer", "perceived_confidence")
# optional submission.yaml field: how the agent stated its moves (emoneg_bench.protocol; builtin = a scripted
# agent with its own structured channel)
ENTRY_PROTOCOLS = ("unspecified", "structured", "text", "builtin", "other")
SHOWN = 5  # how many ids, rows or differences one problem lists


@dataclass
class Report:
    """The verdict on one submission. ``replayed`` (accepted only) is what scores are computed from."""

    accepted: bool
    problems: list[str] = field(default_factory=list)
    replayed: list[Episode] = field(default_factory=list)


# ---- episodes ------------------------------------------------------------------------------------

def _utterance(turn: dict) -> Utterance:
    return Utterance(turn=turn["turn"], role=Role(turn["role"]), text=turn["text"], act=Act(turn["act"]),
                     offer=turn["offer"], offer_status=turn["offer_status"],
                     declared_emotion=turn["declared_emotion_name"], perceived_emotion=turn["perceived_emotion_name"],
                     perceived_confidence=turn["perceived_confidence"])


def episode_from_row(row: dict, task: Task, max_turns: int) -> Episode:
    """The inverse of ``schema.episode_row`` (judge scores aside)."""
    outcome = Outcome(Ending(row["ending_name"]), row["agreed_value"], row["utility"], row["rounds"],
                      Role(row["ended_by"]) if row["ended_by"] else None)
    return Episode(task, row["focal_agent"], row["counterparty_agent"], max_turns,
                   tuple(_utterance(t) for t in row["turns"]), outcome)


def episodes_from_parquet(path: str | Path, tasks_by_id: dict[str, Task], max_turns: int) -> list[Episode]:
    episodes = []
    for index, row in enumerate(pq.read_table(path).to_pylist()):
        if row["task_id"] not in tasks_by_id:
            raise InputError(f"unknown task id {row['task_id']!r}", file=str(path), row=index, field="task_id")
        episodes.append(episode_from_row(row, tasks_by_id[row["task_id"]], max_turns))
    return episodes


def stored_precision(episode: Episode) -> Episode:
    """``episode`` as Parquet stores it: perceived confidences are float32 in the schema."""
    return dataclasses.replace(episode, utterances=tuple(
        dataclasses.replace(u, perceived_confidence=float(np.float32(u.perceived_confidence)))
        for u in episode.utterances))


def write_submission(folder: str | Path, episodes: list[Episode], metadata: dict,
                     splits: dict[str, str] | None = None) -> Path:
    """Write ``episodes`` (split per task id, default ``test``) and ``metadata`` as a submission folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    splits = splits or {}
    rows = [episode_row(e, splits.get(e.task.task_id, OFFICIAL_SPLIT), ()) for e in episodes]
    pq.write_table(arrow_table("episodes", rows), folder / EPISODES)
    (folder / METADATA).write_text(yaml.safe_dump(metadata, sort_keys=False))
    return folder


# ---- checks --------------------------------------------------------------------------------------

def check_files(folder: Path) -> list[str]:
    """Only the expected plain files, inside the folder, within their size limits; no pickles,
    executables or links."""
    problems = []
    if folder.is_symlink() or not folder.is_dir():
        return [f"{folder} is not a folder (a submission is a folder, not a link or a file)"]
    root = folder.resolve()
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            problems.append(f"{name} is a link; submissions may contain only plain files")
            if not path.resolve().is_relative_to(root):
                problems.append(f"{name} points outside the submission folder (to {os.readlink(path)})")
            continue
        if path.is_dir():
            problems.append(f"{name} is a folder; a submission holds only {', '.join(MAX_BYTES)}")
            continue
        if path.suffix.lower() in PICKLE_SUFFIXES:
            problems.append(f"{name} is a pickle; pickles can run code when loaded and are refused")
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):  # a FIFO or device: never opened, it could block or never end
            problems.append(f"{name} is not a plain file")
            continue
        with open(path, "rb") as handle:
            head = handle.read(4)
        if mode & 0o111 or head.startswith(EXECUTABLE_MAGIC):
            problems.append(f"{name} is executable (exec bit or a program header); executables are refused")
        if name not in MAX_BYTES:
            problems.append(f"{name} is not expected; a submission holds only {', '.join(MAX_BYTES)}")
        elif (size := path.stat().st_size) > MAX_BYTES[name]:
            problems.append(f"{name} is {size:,} bytes, over the {MAX_BYTES[name]:,}-byte limit")
    for name in REQUIRED_FILES:
        if not (folder / name).exists() and not (folder / name).is_symlink():
            problems.append(f"{name} is missing")
    return problems


def check_metadata(path: Path, version: str, release: str) -> list[str]:
    if path.stat().st_size > MAX_BYTES[METADATA]:
        return []  # never parsed: check_files reports the size, and parsing is what a large file would abuse
    try:
        metadata = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return [f"{METADATA} is not valid YAML: {error}"]
    if not isinstance(metadata, dict):
        return [f"{METADATA} must be a YAML mapping of {', '.join(METADATA_FIELDS)}"]
    problems = []
    for name, kind in METADATA_FIELDS.items():
        value = metadata.get(name)
        if value is None:
            problems.append(f"{METADATA}: field {name!r} is missing")
        elif not isinstance(value, kind):
            problems.append(f"{METADATA}: field {name!r} must be a {kind.__name__}, got {value!r}")
    seeds = metadata.get("seeds")
    if isinstance(seeds, list) and not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        problems.append(f"{METADATA}: field 'seeds' must be a list of integers, got {seeds!r}")
    protocol = metadata.get("protocol", ENTRY_PROTOCOLS[0])
    if protocol not in ENTRY_PROTOCOLS:
        problems.append(f"{METADATA}: field 'protocol' (how the agent stated its moves) must be one of "
                        f"{', '.join(ENTRY_PROTOCOLS)}, got {protocol!r}")
    training_data = metadata.get("training_data")
    if isinstance(training_data, str) and training_data not in (version, release):
        problems.append(f"{METADATA}: training_data is {training_data!r} but the release is version {version!r} "
                        f"({release})")
    return problems


def check_schema(table_schema: pa.Schema) -> list[str]:
    expected = features("episodes").arrow_schema
    problems = []
    for column in expected:
        if column.name not in table_schema.names:
            problems.append(f"{EPISODES}: column {column.name!r} is missing")
        elif not table_schema.field(column.name).type.equals(column.type):
            problems.append(f"{EPISODES}: column {column.name!r} has type {table_schema.field(column.name).type}, "
                            f"expected {column.type}")
    return problems


def _non_finite_rows(values: pa.Array) -> list[int]:
    array = values.to_numpy(zero_copy_only=False)
    return np.flatnonzero(~np.isfinite(array)).tolist()


def check_finite(table: pa.Table) -> list[str]:
    problems = []
    for name in FLOAT_COLUMNS:
        rows = _non_finite_rows(table.column(name).combine_chunks().fill_null(0.0))
        if rows:
            problems.append(f"{EPISODES}: column {name!r} is NaN or infinite in rows {_first(rows)}")
    turns = table.column("turns").combine_chunks()
    row_of_turn = pc.list_parent_indices(turns).to_numpy()
    for name in FLOAT_TURN_FIELDS:
        turn_rows = _non_finite_rows(pc.struct_field(pc.list_flatten(turns), name).fill_null(0.0))
        if turn_rows:
            rows = sorted({int(row_of_turn[i]) for i in turn_rows})
            problems.append(f"{EPISODES}: turns.{name} is NaN or infinite in rows {_first(rows)}")
    return problems


def check_coverage(task_ids: list[str], tasks: dict[str, list[Task]]) -> list[str]:
    """Every official ``test`` task exactly once; optional splits all-or-nothing, once each."""
    counts = Counter(task_ids)
    problems = []
    duplicated = sorted(t for t, n in counts.items() if n > 1)
    if duplicated:
        problems.append(f"{EPISODES}: {len(duplicated)} task ids appear more than once: {_first(duplicated)}")
    known = {t.task_id for split_tasks in tasks.values() for t in split_tasks}
    unknown = sorted(counts.keys() - known)
    if unknown:
        problems.append(f"{EPISODES}: {len(unknown)} task ids are not release test tasks: {_first(unknown)}")
    for split, split_tasks in tasks.items():
        ids = [t.task_id for t in split_tasks]
        present = [i for i in ids if i in counts]
        if split != OFFICIAL_SPLIT and not present:
            continue
        missing = [i for i in ids if i not in counts]
        if missing:
            problems.append(f"{EPISODES}: {len(missing)} of the {len(ids)} {split} tasks are missing: "
                            f"{_first(missing)}")
    return problems


def check_turns(table: pa.Table, max_turns: int) -> list[str]:
    """Each episode opens with a focal message, roles alternate, turn numbers count up, enums parse."""
    problems = []
    task_ids = table.column("task_id").to_pylist()
    roles = [str(r) for r in (Role.FOCAL, Role.COUNTERPARTY)]
    for index, turns in enumerate(table.column("turns").to_pylist()):
        where = f"{EPISODES} row {index} (task {task_ids[index]})"
        if not turns:
            problems.append(f"{where}: has no turns; the focal agent must open")
        elif len(turns) > max_turns:
            problems.append(f"{where}: has {len(turns)} turns, over the release's max_turns {max_turns}")
        for position, turn in enumerate(turns or []):
            if turn["role"] != roles[position % 2] or turn["turn"] != position:
                problems.append(f"{where}: turn {position} should be turn {position} by {roles[position % 2]}, "
                                f"got turn {turn['turn']} by {turn['role']!r} (roles alternate, focal first)")
                break
            if turn["act"] not in {str(a) for a in Act}:
                problems.append(f"{where}: turn {position} has act {turn['act']!r}, expected one of "
                                f"{', '.join(Act)}")
                break
    endings = table.column("ending_name").to_pylist()
    ended_by = table.column("ended_by").to_pylist()
    for index, (ending, by) in enumerate(zip(endings, ended_by, strict=True)):
        if ending not in {str(e) for e in Ending}:
            problems.append(f"{EPISODES} row {index}: ending_name {ending!r} is not one of {', '.join(Ending)}")
        if by is not None and by not in roles:
            problems.append(f"{EPISODES} row {index}: ended_by {by!r} is not one of {', '.join(roles)}")
    return problems


def _first(items: list) -> str:
    shown = ", ".join(map(str, items[:SHOWN]))
    return shown + (f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else "")


# ---- the whole validation ------------------------------------------------------------------------

def validate_submission(folder: str | Path, release_dir: str | Path, recognizer: Recognizer | None = None) -> Report:
    """Check ``folder`` against the release in ``release_dir`` and, when every check passes, replay it."""
    folder, release_dir = Path(folder), Path(release_dir)
    manifest = open_release(release_dir, ("tasks", "scenarios"), OFFICIAL_SPLIT)
    max_turns = manifest["builder_config"]["max_turns"]
    problems = check_files(folder)
    if (folder / METADATA).is_file() and not (folder / METADATA).is_symlink():
        problems += check_metadata(folder / METADATA, manifest["version"], manifest.get("release", ""))
    table = None
    if (folder / EPISODES).is_file() and not (folder / EPISODES).is_symlink() \
            and (folder / EPISODES).stat().st_size <= MAX_BYTES[EPISODES]:
        try:
            check_parquet_footer(folder / EPISODES)
            table = pq.read_table(folder / EPISODES)
        except InputError as error:
            problems.append(f"{EPISODES} {error.args[0].split(': ', 1)[-1]}")
        except (pa.ArrowException, OSError) as error:
            problems.append(f"{EPISODES} does not open as Parquet: {error}")
    tasks = {OFFICIAL_SPLIT: load_release_tasks(release_dir, OFFICIAL_SPLIT)}
    tasks |= {s: load_release_tasks(release_dir, s) for s in OPTIONAL_SPLITS}
    if table is not None:
        schema_problems = check_schema(table.schema)
        problems += schema_problems
        if not schema_problems:
            problems += check_finite(table)
            problems += check_coverage(table.column("task_id").to_pylist(), tasks)
            problems += check_turns(table, max_turns)
    if problems:
        return Report(False, problems)

    tasks_by_id = {t.task_id: t for split_tasks in tasks.values() for t in split_tasks}
    recorded = episodes_from_parquet(folder / EPISODES, tasks_by_id, max_turns)
    return verify_by_replay(recorded, max_turns, recognizer)


def verify_by_replay(recorded: list[Episode], max_turns: int, recognizer: Recognizer | None = None) -> Report:
    """Re-run the official counterparty on the recorded focal messages; any difference rejects."""
    if recognizer is None:
        from emoneg_bench.perception.recognizer import default_recognizer

        recognizer = default_recognizer()
    replayed = [stored_precision(e) for e in replay(recorded, PersonaAgent(), Engine(recognizer, max_turns))]
    found = [(d, a, b) for a, b in zip(recorded, replayed, strict=True) for d in differences(a, b)]
    if found:
        shown = "; ".join(f"task {d.task_id}" + (f" turn {d.turn}" if d.turn is not None else "") + f": {d.what}"
                          + (_outcome_detail(a.outcome, b.outcome) if d.what.startswith("ending") else "")
                          for d, a, b in found[:SHOWN])
        more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
        return Report(False, [f"replay differs from the submission in {len(found)} places: {shown}{more}"])
    return Report(True, [], replayed)


def _outcome_detail(recorded: Outcome, replayed: Outcome) -> str:
    changed = [f"{f.name} {getattr(recorded, f.name)!s} vs {getattr(replayed, f.name)!s}"
               for f in dataclasses.fields(Outcome) if getattr(recorded, f.name) != getattr(replayed, f.name)]
    return f" ({', '.join(changed)})" if changed else ""


def describe(report: Report) -> str:
    """A short human-readable verdict, for the CLI."""
    if report.accepted:
        return f"accepted: {len(report.replayed)} episodes replayed identically"
    return "rejected:\n" + "\n".join(f"- {p}" for p in report.problems)


__all__ = ["Report", "load_release_tasks", "release_manifest", "episodes_from_parquet", "episode_from_row", "validate_submission",
           "verify_by_replay", "write_submission", "stored_precision", "describe", "MAX_BYTES"]
