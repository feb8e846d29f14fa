"""Build configs: a YAML file, optionally overridden by a named profile, checked into a frozen
:class:`BuildConfig`. Every mistake names the file, the key and what was expected."""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emoneg_bench.errors import EmoNegError, InputError
from emoneg_bench.limits import check_size

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
TEACHER_KINDS = ("builtin", "lm")
TEACHER_ROLES = ("focal", "counterparty")

DEFAULTS: dict[str, Any] = {
    "name": None, "version": None, "license": "apache-2.0", "seed": 0,
    "domains": ["debt", "disaster", "hospital", "student"],
    "scenarios": {"count": 100, "validation": 8},
    "max_turns": 30,
    "teacher": {"kind": "builtin", "schedule": "random", "model": None, "role": "focal"},
    "corpus": {"episodes_per_scenario": 50, "personas": "training", "sampled": 0},
    "sweep": {"emotions": "all", "episodes_per_persona": 5},
    "tasks": {"seeds": 3},
    "shards": {"max_episodes": 4000},
}


@dataclass(frozen=True)
class BuildConfig:
    name: str
    version: str
    license: str
    seed: int
    domains: tuple[str, ...]
    scenario_count: int
    validation_scenarios: int
    max_turns: int
    teacher_kind: str
    teacher_schedule: str
    teacher_model: str | None
    episodes_per_scenario: int
    corpus_personas: tuple[str, ...]
    sweep_emotions: tuple[str, ...]
    sweep_episodes_per_persona: int
    task_seeds: int
    max_episodes_per_shard: int
    profile: str | None = None
    teacher_role: str = "focal"  # the side the teacher plays; the personas play the other one
    corpus_sampled: int = 0  # round-robin slots that each draw a fresh member of the sampled persona population

    @property
    def release_name(self) -> str:
        """``emoneg-trajectories-v1.0.0``; a profile is part of the name (``…-small-v1.0.0``), so a
        profile build can never be mistaken for the full release of the same version."""
        name = f"{self.name}-{self.profile}" if self.profile else self.name
        return f"{name}-v{self.version}"

    @property
    def training_scenarios(self) -> int:
        from emoneg_bench.domains.base import TRAIN_FRACTION

        return int(TRAIN_FRACTION * self.scenario_count)

    def to_dict(self) -> dict:
        """The config as recorded in ``MANIFEST.json``. ``teacher_role`` came after 1.0 and is left out at
        its default, so a focal release built now has the same bytes as one built before it existed; so is
        ``corpus_sampled`` (2.1) at 0."""
        data = asdict(self)
        if data["teacher_role"] == "focal":
            del data["teacher_role"]
        if data["corpus_sampled"] == 0:
            del data["corpus_sampled"]
        return data


def load_config(path: str | Path, profile: str | None = None) -> BuildConfig:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such build config", file=str(path))
    import yaml

    check_size(path, "build config")  # before parsing: a large YAML file costs minutes and gigabytes to read
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise InputError("not valid YAML: the file is not UTF-8 text", file=str(path)) from None
    except yaml.YAMLError as error:
        detail = str(getattr(error, "problem", None) or error).splitlines()[0]
        raise InputError(f"not valid YAML ({error.__class__.__name__}: {detail})", file=str(path)) from None
    if not isinstance(raw, dict):
        raise InputError("a build config is a YAML mapping", file=str(path))
    profiles = raw.pop("profiles", {}) or {}
    merged = _merge(DEFAULTS, raw, str(path), "")
    if profile is not None:
        if profile not in profiles:
            raise InputError(f"no profile {profile!r}; the file defines: {', '.join(profiles) or 'none'}",
                             file=str(path))
        merged = _merge(merged, profiles[profile], str(path), f"profiles.{profile}")
    return _check(merged, str(path), profile)


def _merge(base: dict, override: Any, file: str, where: str) -> dict:
    """``base`` updated by ``override``; keys (and nested keys) must be known ones."""
    if not isinstance(override, dict):
        raise InputError("expected a mapping", file=file, field=where or None)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        field = f"{where}.{key}" if where else key
        if key not in DEFAULTS:
            raise InputError(f"unknown key; expected one of: {', '.join(DEFAULTS)}", file=file, field=field)
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise InputError("expected a mapping", file=file, field=field)
            unknown = sorted(set(value) - set(DEFAULTS[key]))
            if unknown:
                raise InputError(f"unknown key {unknown[0]!r}; expected one of: {', '.join(DEFAULTS[key])}",
                                 file=file, field=field)
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _check(raw: dict, file: str, profile: str | None) -> BuildConfig:
    from emoneg_bench.agents.personas import get_persona, persona_names
    from emoneg_bench.agents.teacher import parse_schedule
    from emoneg_bench.domains import get_domain
    from emoneg_bench.emotions import GOEMOTIONS, get_emotion

    def need(condition: bool, field: str, message: str):
        if not condition:
            raise InputError(message, file=file, field=field)

    def integer(field: str, value: Any, lo: int, hi: int) -> int:
        need(isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi, field,
             f"expected a whole number from {lo} to {hi}, got {value!r}")
        return value

    def names(field: str, value: Any, lookup, keyword: str | None = None,
              default_all: tuple[str, ...] = ()) -> tuple[str, ...]:
        if keyword is not None and value == keyword:
            return default_all
        need(isinstance(value, list) and value and all(isinstance(v, str) for v in value), field,
             "expected a non-empty list of names")
        try:
            for v in value:
                lookup(v)
        except EmoNegError as error:
            raise InputError(str(error), file=file, field=field) from None
        need(len(set(value)) == len(value), field, "names must not repeat")
        return tuple(value)

    need(isinstance(raw["name"], str) and bool(NAME.match(raw["name"])), "name",
         "expected a lowercase name of letters, digits and dashes")
    need(isinstance(raw["version"], str) and bool(SEMVER.match(raw["version"])), "version",
         f"expected a semantic version like 1.0.0, got {raw['version']!r}")
    need(isinstance(raw["license"], str) and bool(raw["license"]), "license", "expected a licence identifier")
    teacher = raw["teacher"]
    need(teacher["kind"] in TEACHER_KINDS, "teacher.kind", f"expected one of {', '.join(TEACHER_KINDS)}")
    need(teacher["role"] in TEACHER_ROLES, "teacher.role",
         f"expected one of {', '.join(TEACHER_ROLES)} (the side the teacher plays), got {teacher['role']!r}")
    need(teacher["kind"] != "lm" or (isinstance(teacher.get("model"), str) and bool(teacher["model"])),
         "teacher.model", "a language-model teacher needs `model`: smollm2, a model folder or an endpoint URL")
    try:
        parse_schedule(teacher["schedule"])
    except (EmoNegError, ValueError) as error:
        raise InputError(str(error), file=file, field="teacher.schedule") from None
    count = integer("scenarios.count", raw["scenarios"]["count"], 5, 100_000)
    training = int(0.8 * count)
    return BuildConfig(
        name=raw["name"],
        version=raw["version"],
        license=raw["license"],
        seed=integer("seed", raw["seed"], 0, 2**31 - 1),
        domains=names("domains", raw["domains"], get_domain),
        scenario_count=count,
        validation_scenarios=integer("scenarios.validation", raw["scenarios"]["validation"], 1, training - 1),
        max_turns=integer("max_turns", raw["max_turns"], 2, 200),
        teacher_kind=teacher["kind"],
        teacher_schedule=teacher["schedule"],
        teacher_model=teacher.get("model"),
        episodes_per_scenario=integer("corpus.episodes_per_scenario", raw["corpus"]["episodes_per_scenario"], 1,
                                      100_000),
        corpus_personas=names("corpus.personas", raw["corpus"]["personas"], _training_persona(get_persona),
                              "training", persona_names(held_out=False)),
        sweep_emotions=names("sweep.emotions", raw["sweep"]["emotions"], get_emotion, "all", GOEMOTIONS),
        sweep_episodes_per_persona=integer("sweep.episodes_per_persona", raw["sweep"]["episodes_per_persona"], 0,
                                           100_000),
        task_seeds=integer("tasks.seeds", raw["tasks"]["seeds"], 1, 1000),
        max_episodes_per_shard=integer("shards.max_episodes", raw["shards"]["max_episodes"], 10, 1_000_000),
        profile=profile,
        teacher_role=teacher["role"],
        corpus_sampled=integer("corpus.sampled", raw["corpus"]["sampled"], 0, 1000),
    )


def _training_persona(get_persona):
    def lookup(name: str):
        if get_persona(name).held_out:
            raise EmoNegError(f"persona {name!r} is held out for the unseen-counterparty split; "
                              "corpora use training personas only")
    return lookup
