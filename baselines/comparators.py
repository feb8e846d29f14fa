"""Fixed-emotion comparators chosen on validation: ``best-fixed`` (the one emotion with the highest validation
utility), ``best-fixed-domain`` (one per domain) and the ``persona-best-fixed`` upper reference (one per
persona: it knows who it faces, so it is a reference line in the headroom table, never a policy to enter).

``emoneg train best-fixed`` plays every one of the 28 emotions throughout, with the phrasing bank, on the
release's validation tasks (and the validation scenarios against each held-out persona, for the reference
only) and writes ``best_fixed.json``: the validation utility of every emotion overall, per domain and per
persona, and the three choices. Ties go to the emotion that comes first in GoEmotions order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emoneg_bench.agents.teacher import EmotionSchedule, FixedSchedule
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.engine import TurnContext
from emoneg_bench.errors import InputError
from emoneg_bench.outputs import write_json

from .validation import ValidationSet
from .validation import best_emotion as _best

CHOICES = "best_fixed.json"
FORMAT = "emoneg-best-fixed/1"


def choose_best_fixed(release: str | Path, out_dir: str | Path, role: str = "focal", progress: bool = True) -> Path:
    """Write ``out_dir/best_fixed.json`` (kept if it exists). Returns ``out_dir``."""
    from tqdm import tqdm

    from emoneg_bench.agents.personas import persona_names
    from emoneg_bench.hashing import sha256_file
    from emoneg_bench.perception.recognizer import default_recognizer

    out = Path(out_dir)
    if (out / CHOICES).is_file():
        return out
    validation = ValidationSet.of(release, role=role)
    held_out = ValidationSet.of(release, role=role, personas=persona_names(held_out=True))
    recognizer = default_recognizer()
    rows = {}
    with tqdm(total=len(GOEMOTIONS), desc="best-fixed", unit="emotion", disable=not progress) as bar:
        for emotion in GOEMOTIONS:
            rows[emotion] = (validation.utilities(FixedSchedule(emotion), recognizer),
                             held_out.utilities(FixedSchedule(emotion), recognizer))
            bar.update()
    overall = {e: float(u.mean()) for e, (u, _) in rows.items()}
    by_domain, by_persona = {}, {}
    for domain in sorted(set(validation.domains().tolist())):
        mask = validation.domains() == domain
        by_domain[domain] = {e: float(u[mask].mean()) for e, (u, _) in rows.items()}
    for tasks, index in ((validation, 0), (held_out, 1)):
        for persona in sorted(set(tasks.personas().tolist())):
            mask = tasks.personas() == persona
            by_persona[persona] = {e: float(pair[index][mask].mean()) for e, pair in rows.items()}
    record = {
        "format": FORMAT, "role": role, "release": str(Path(release).name),
        "manifest_sha256": sha256_file(Path(release) / "MANIFEST.json"),
        "validation_tasks": len(validation.tasks), "held_out_tasks": len(held_out.tasks),
        "best_fixed": _best(overall),
        "best_fixed_domain": {d: _best(s) for d, s in by_domain.items()},
        "persona_best_fixed": {p: _best(s) for p, s in by_persona.items()},
        "validation_utility": {"overall": _rounded(overall), "by_domain": {d: _rounded(s) for d, s in by_domain.items()},
                               "by_persona": {p: _rounded(s) for p, s in by_persona.items()}},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CHOICES, record)
    return out


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {e: round(u, 6) for e, u in scores.items()}


def load_choices(folder: str | Path) -> dict:
    path = Path(folder) / CHOICES
    if not path.is_file():
        raise InputError(f"not a best-fixed run: it has no {CHOICES} (make one with `emoneg train best-fixed`)",
                         file=str(folder))
    record = json.loads(path.read_text())
    if record.get("format") != FORMAT:
        raise InputError(f"written in format {record.get('format')!r}, this toolkit reads {FORMAT!r}", file=str(path))
    return record


@dataclass(frozen=True)
class KeyedSchedule(EmotionSchedule):
    """A fixed emotion per domain (``by="domain"``) or per persona (``by="persona"``, the reference)."""

    by: str
    emotions: tuple[tuple[str, str], ...]  # (key, emotion)

    @property
    def name(self) -> str:
        return f"best-fixed-by-{self.by}"

    def choose_in(self, context: TurnContext, turn_index: int, rng) -> str:
        key = context.task.scenario.domain if self.by == "domain" else context.task.persona
        chosen = dict(self.emotions).get(key)
        if chosen is None:
            raise InputError(f"no validation choice for {self.by} {key!r} in this best-fixed run; rebuild it on a "
                             f"release with that {self.by}", field=self.by)
        return chosen


def schedule(record: dict, kind: str) -> EmotionSchedule:
    """The schedule of ``kind``: ``best-fixed``, ``best-fixed-domain`` or ``persona-best-fixed``."""
    if kind == "best-fixed":
        return FixedSchedule(record["best_fixed"])
    if kind == "best-fixed-domain":
        return KeyedSchedule("domain", tuple(sorted(record["best_fixed_domain"].items())))
    if kind == "persona-best-fixed":
        return KeyedSchedule("persona", tuple(sorted(record["persona_best_fixed"].items())))
    raise KeyError(kind)

