"""The four negotiation domains (DESIGN.md section 3), registered by id on import."""

from . import debt, disaster, hospital, student  # noqa: F401  (registration side effect)
from .base import (
    Column,
    ColumnKind,
    Domain,
    Polarity,
    Scenario,
    domain_ids,
    generate_scenarios,
    get_domain,
    scenario_id,
    scenario_split,
)

__all__ = ["Column", "ColumnKind", "Domain", "Polarity", "Scenario", "domain_ids", "generate_scenarios",
           "get_domain", "scenario_id", "scenario_split"]
