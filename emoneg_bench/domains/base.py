"""What a negotiation domain is: one scalar issue, its unit and polarity, scenarios and prompts.

Adding a domain is adding one module that builds a :class:`Domain` and calls :func:`register`.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar

from ..registry import Registry
from ..units import Unit

TRAIN_FRACTION = 0.8


class Polarity(StrEnum):
    """Which way the focal agent wants the number to move."""

    LOWER = "lower"
    HIGHER = "higher"


class ColumnKind(StrEnum):
    """How an importer column is typed; only ``TEXT`` columns may absorb unquoted commas."""

    ID = "id"
    TEXT = "text"
    CATEGORY = "category"
    INT = "int"
    FLOAT = "float"
    CLOCK = "clock"
    DATETIME = "datetime"


@dataclass(frozen=True)
class Column:
    """One column of a published scenario CSV: its header, our field name and its kind."""

    header: str
    field: str
    kind: ColumnKind


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """Fields every scenario carries; each domain subclasses it with its own typed fields.

    ``focal_anchor`` (a) is the focal agent's ideal value, ``counterparty_anchor`` (b) the
    counterparty's, both in the domain unit.
    """

    scenario_id: str
    domain: str
    focal_anchor: int
    counterparty_anchor: int
    source_id: str | None = None

    context_template: ClassVar[str] = ""

    def context(self) -> str:
        """The scenario facts as prose, used by prompts and phrasing slots."""
        return _context(self)

    def slots(self) -> dict[str, Any]:
        """Values available to prompt and phrasing templates (a fresh dict; fields are flat scalars)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_record(self) -> dict[str, Any]:
        """A flat row for Parquet/CSV: the typed fields plus the rendered context."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"context": self.context()}


@lru_cache(maxsize=8192)
def _context(scenario: Scenario) -> str:
    # Scenarios are frozen and hashable; builds render the same scenario's context thousands of times.
    return scenario.context_template.format(**scenario.slots())


@dataclass(frozen=True)
class Domain:
    """A bargain over one scalar issue between a focal agent and a counterparty."""

    id: str
    paper_name: str
    issue: str
    unit: Unit
    polarity: Polarity
    tolerance: int
    focal_role: str
    counterparty_role: str
    focal_anchor_range: tuple[int, int]
    counterparty_anchor_range: tuple[int, int]
    offer_bounds: tuple[int, int]
    scenario_type: type[Scenario]
    sample_fields: Callable[[random.Random], dict[str, Any]]
    focal_prompt: str
    counterparty_prompt: str
    csv_columns: tuple[Column, ...] = ()
    anchors_from_csv: Callable[[Mapping[str, Any]], tuple[int, int]] | None = None

    def has_polarity(self, focal_anchor: float, counterparty_anchor: float) -> bool:
        """True when the focal agent's anchor lies on its preferred side of the counterparty's."""
        if self.polarity is Polarity.LOWER:
            return focal_anchor < counterparty_anchor
        return focal_anchor > counterparty_anchor

    def role_name(self, role: str) -> str:
        return self.focal_role if role == "focal" else self.counterparty_role

    def scenario(self, **fields: Any) -> Scenario:
        return self.scenario_type(domain=self.id, **fields)

    def system_prompt(self, role: str, scenario: Scenario) -> str:
        """The role prompt for ``role`` (``focal`` or ``counterparty``) filled with scenario facts."""
        return _system_prompt(self.id, str(role), scenario)


@lru_cache(maxsize=8192)
def _system_prompt(domain_id: str, role: str, scenario: Scenario) -> str:
    from ..perception.offers import format_offer

    domain = get_domain(domain_id)
    template = domain.focal_prompt if role == "focal" else domain.counterparty_prompt
    return template.format(
        context=scenario.context(),
        focal_anchor_text=format_offer(scenario.focal_anchor, domain.unit),
        counterparty_anchor_text=format_offer(scenario.counterparty_anchor, domain.unit),
        **scenario.slots(),
    )


DOMAINS: Registry[Domain] = Registry("domain")


def register(domain: Domain) -> Domain:
    return DOMAINS.register(domain.id, domain)


def get_domain(name: str) -> Domain:
    """The registered domain called ``name``, or an error listing the known ones."""
    return DOMAINS.get(name)


def domain_ids() -> tuple[str, ...]:
    return DOMAINS.names()


def scenario_id(domain_id: str, index: int) -> str:
    """``debt-0001`` style ids, 1-based."""
    return f"{domain_id}-{index:04d}"


def scenario_split(index: int, count: int) -> str:
    """Scenarios 1…⌊0.8·count⌋ are ``train``, the rest ``test`` (1–80 / 81–100 for 100)."""
    return "train" if index <= int(TRAIN_FRACTION * count) else "test"


def generate_scenarios(domain: Domain | str, count: int = 100, seed: int = 0) -> list[Scenario]:
    """A seeded scenario set whose anchors fall in the domain's published ranges.

    Scenario ``i`` depends only on (domain, seed, i), so a longer set extends a shorter one.
    """
    if isinstance(domain, str):
        domain = get_domain(domain)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    scenarios = []
    for index in range(1, count + 1):
        rng = random.Random(f"{domain.id}/{seed}/{index}")
        scenarios.append(domain.scenario(scenario_id=scenario_id(domain.id, index), **domain.sample_fields(rng)))
    return scenarios


def sample_anchors(
    rng: random.Random, domain_polarity: Polarity, focal_range: tuple[int, int],
    counterparty_range: tuple[int, int], min_gap: int,
) -> tuple[int, int]:
    """Draw (a, b) uniformly from their ranges until a is on the focal side of b by ``min_gap``."""
    while True:
        a = rng.randint(*focal_range)
        b = rng.randint(*counterparty_range)
        gap = b - a if domain_polarity is Polarity.LOWER else a - b
        if gap >= min_gap:
            return a, b
