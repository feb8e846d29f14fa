import pytest
from hypothesis import given
from hypothesis import strategies as st

from emoneg_bench import formulas
from emoneg_bench.domains import domain_ids, generate_scenarios


@pytest.mark.parametrize("domain", domain_ids())
def test_utility_is_one_at_focal_anchor_zero_at_counterparty_anchor_and_linear_between(domain):
    for scenario in generate_scenarios(domain, 20, seed=3):
        a, b = scenario.focal_anchor, scenario.counterparty_anchor
        assert formulas.utility(a, a, b) == 1.0
        assert formulas.utility(b, a, b) == 0.0
        assert formulas.utility(a + 0.25 * (b - a), a, b) == pytest.approx(0.75)
        assert formulas.utility((a + b) / 2, a, b) == pytest.approx(0.5)


def test_utility_respects_polarity_where_the_focal_agent_wants_the_higher_number():
    # disaster/hospital: the focal anchor is the larger number; a deal nearer it is better for the focal agent
    a, b = 300, 60
    assert formulas.utility(240, a, b) == pytest.approx(0.75)
    assert formulas.utility(240, a, b) > formulas.utility(120, a, b)


def test_utility_is_clipped_beyond_the_anchors_and_zero_without_a_deal():
    assert formulas.utility(0, 10, 100) == 1.0
    assert formulas.utility(500, 10, 100) == 0.0
    assert formulas.utility(None, 10, 100) == 0.0


@given(a=st.integers(0, 400), gap=st.integers(1, 400), u=st.floats(0, 1), higher=st.booleans())
def test_position_and_value_at_are_inverse(a, gap, u, higher):
    b = a - gap if higher else a + gap
    assert formulas.position(formulas.value_at(u, a, b), a, b) == pytest.approx(u, abs=1e-9)


@given(t1=st.floats(0, 1), t2=st.floats(0, 1), k=st.floats(0, 0.5), e=st.floats(0.1, 5))
def test_concession_curve_is_monotone_from_k_to_one(t1, t2, k, e):
    lo, hi = sorted((t1, t2))
    assert formulas.concession_curve(lo, k, e) <= formulas.concession_curve(hi, k, e) + 1e-12
    assert formulas.concession_curve(0, k, e) == pytest.approx(k)
    assert formulas.concession_curve(1, k, e) == pytest.approx(1)


def test_boulware_concedes_later_than_conceder():
    assert formulas.concession_curve(0.5, 0, 0.3) < formulas.concession_curve(0.5, 0, 1) < formulas.concession_curve(0.5, 0, 3)


def test_concession_target_runs_from_own_anchor_to_reservation():
    assert formulas.concession_target(0, 0.3, 0, 1) == 1.0
    assert formulas.concession_target(1, 0.3, 0, 1) == pytest.approx(0.3)
    assert formulas.concession_target(0.5, 0.3, 0, 1) == pytest.approx(0.65)


def test_step_reward_is_net_concession_weighted_down_late_in_the_episode():
    assert formulas.step_reward(0.1, 0.3, 0.0) == pytest.approx(0.2)
    assert formulas.step_reward(0.1, 0.3, 1.0) == pytest.approx(0.1)
    assert formulas.step_reward(0.3, 0.1, 0.0) == pytest.approx(-0.2)


def test_terminal_reward_separates_agreement_walkaway_and_truncation():
    assert formulas.terminal_reward("agreement", 0.8) == pytest.approx(0.8)
    assert formulas.terminal_reward("walkaway", 0.0) == -0.5
    assert formulas.terminal_reward("breakdown", 0.0) == -0.5
    assert formulas.terminal_reward("turn_limit", 0.0) == 0.0
