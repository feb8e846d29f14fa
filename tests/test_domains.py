import pytest

from emoneg_bench.domains import Polarity, domain_ids, generate_scenarios, get_domain, scenario_split
from emoneg_bench.errors import UnknownNameError

DESIGN_TABLE = {
    # id: (polarity, unit, focal range, counterparty range)
    "debt": (Polarity.LOWER, "days", (5, 20), (32, 179)),
    "disaster": (Polarity.HIGHER, "minutes", (45, 480), (10, 300)),
    "hospital": (Polarity.HIGHER, "days", (12, 395), (1, 365)),
    "student": (Polarity.LOWER, "minutes past 9 PM", (0, 360), (180, 540)),
}


def test_the_four_domains_are_registered():
    assert set(domain_ids()) == set(DESIGN_TABLE)


@pytest.mark.parametrize("domain_id", sorted(DESIGN_TABLE))
def test_generated_anchors_fall_in_the_published_ranges_with_the_domain_polarity(domain_id):
    polarity, unit, focal_range, counterparty_range = DESIGN_TABLE[domain_id]
    domain = get_domain(domain_id)
    assert domain.polarity is polarity and domain.unit == unit
    scenarios = generate_scenarios(domain_id, 100, seed=0)
    assert [s.scenario_id for s in scenarios[:2]] == [f"{domain_id}-0001", f"{domain_id}-0002"]
    assert scenarios[-1].scenario_id == f"{domain_id}-0100"
    for s in scenarios:
        assert focal_range[0] <= s.focal_anchor <= focal_range[1]
        assert counterparty_range[0] <= s.counterparty_anchor <= counterparty_range[1]
        assert domain.has_polarity(s.focal_anchor, s.counterparty_anchor)
        assert abs(s.focal_anchor - s.counterparty_anchor) > 2 * domain.tolerance
        assert s.domain == domain_id


def test_generation_is_seeded_and_a_longer_set_extends_a_shorter_one():
    assert generate_scenarios("debt", 30, seed=1) == generate_scenarios("debt", 30, seed=1)
    assert generate_scenarios("debt", 30, seed=1) != generate_scenarios("debt", 30, seed=2)
    assert generate_scenarios("hospital", 100, seed=5)[:40] == generate_scenarios("hospital", 40, seed=5)


def test_scenarios_1_to_80_train_81_to_100_test():
    assert [scenario_split(i, 100) for i in (1, 80, 81, 100)] == ["train", "train", "test", "test"]


def test_hospital_counterparty_anchor_is_waitlist_minus_junior_reduction():
    for s in generate_scenarios("hospital", 50, seed=0):
        assert s.counterparty_anchor == s.focal_anchor - s.time_reduction_if_junior_days


def test_prompts_fill_with_scenario_facts_in_the_domain_unit():
    student = generate_scenarios("student", 1, seed=0)[0]
    prompt = get_domain("student").system_prompt("focal", student)
    assert "{" not in prompt and ("PM" in prompt or "AM" in prompt)
    debt = generate_scenarios("debt", 1, seed=0)[0]
    assert f"{debt.focal_anchor} days" in get_domain("debt").system_prompt("focal", debt)
    assert f"{debt.counterparty_anchor} days" in get_domain("debt").system_prompt("counterparty", debt)


def test_unknown_domain_names_the_known_ones():
    with pytest.raises(UnknownNameError, match="unknown domain 'loans'; expected one of: debt, disaster, hospital, student"):
        get_domain("loans")
