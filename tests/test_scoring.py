"""Scoring on hand-built transcripts with known answers, plus one real small release."""

from __future__ import annotations

import csv
import io
import json
import math
from statistics import NormalDist

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emoneg_bench.errors import InputError
from emoneg_bench.schema import ENDINGS, features
from leaderboard.scoring import Estimate, Table, score
from leaderboard.stats import (
    bootstrap_bradley_terry,
    bradley_terry,
    percentile_bootstrap_ci,
    ranks_with_ties,
    wilson_interval,
    win_matrix,
)

Z95 = NormalDist().inv_cdf(0.975)


def turn(i: int, role: str, declared: str | None = None, perceived: str | None = None) -> dict:
    return {"turn": i, "role": role, "text": "…", "act": "offer", "offer": 1.0, "offer_status": "stated",
            "declared_emotion": -1, "declared_emotion_name": declared, "perceived_emotion": -1,
            "perceived_emotion_name": perceived, "perceived_confidence": 0.9, "judge_score": None}


def episode(policy: str, utility: float, ending: str = "agreement", domain: str = "debt", task: str = "t0",
            split: str = "test", counterparty: str = "persona", rounds: int = 4, turns: list | None = None) -> dict:
    return {"episode_id": f"{policy}-{task}-{utility}", "task_id": task, "split": split, "domain": domain,
            "scenario_id": "s", "focal_anchor": 0, "counterparty_anchor": 1, "unit": "usd", "polarity": "lower",
            "scenario_context": "", "persona": "firm", "focal_agent": policy, "counterparty_agent": counterparty,
            "seed": 0, "max_turns": 20, "ending": ENDINGS.index(ending), "ending_name": ending,
            "agreed_value": None, "utility": utility, "rounds": rounds, "ended_by": None,
            "turns": turns if turns is not None else [turn(0, "focal", "joy", "joy"), turn(1, "counterparty")]}


def write(path, rows: list[dict]):
    pq.write_table(pa.Table.from_pylist(rows, schema=features("episodes").arrow_schema), path)
    return path


@pytest.fixture
def two_policies(tmp_path):
    rows = [episode("a", u, task=f"t{i}") for i, u in enumerate([0.2, 0.4, 0.6, 0.8])]
    rows += [episode("a", 0.0, "walkaway", task="t4"), episode("a", 0.99, "error", task="t5")]
    rows += [episode("b", u, domain="student", task=f"t{i}") for i, u in enumerate([0.1, 0.1, 0.1, 0.1])]
    return write(tmp_path / "episodes.parquet", rows)


# ── stats ───────────────────────────────────────────────────────────────────────────────────────

def test_constant_sample_has_a_zero_width_bootstrap_ci():
    assert percentile_bootstrap_ci(np.full(50, 0.5), n_resamples=2000) == (0.5, 0.5)


def test_two_value_bootstrap_ci_lies_within_the_sample_and_is_deterministic_for_a_seed():
    sample = np.array([0.0, 1.0] * 10)
    low, high = percentile_bootstrap_ci(sample, n_resamples=5000, seed=3)
    assert 0.0 <= low < 0.5 < high <= 1.0
    assert percentile_bootstrap_ci(sample, n_resamples=5000, seed=3) == (low, high)


@pytest.mark.parametrize("n", [1500, 100_000])  # the exact path and the binned path
def test_bootstrap_ci_matches_the_normal_approximation_for_large_n(n):
    sample = np.array([0.0, 1.0] * (n // 2))
    low, high = percentile_bootstrap_ci(sample, n_resamples=10000, seed=0)
    half = Z95 * math.sqrt(0.25 / n)
    assert low == pytest.approx(0.5 - half, abs=0.1 * half)
    assert high == pytest.approx(0.5 + half, abs=0.1 * half)


def test_binned_bootstrap_matches_the_exact_spread_on_continuous_values():
    sample = np.random.default_rng(0).exponential(size=50_000)
    low, high = percentile_bootstrap_ci(sample, n_resamples=10000, seed=0)
    half = Z95 * sample.std() / math.sqrt(len(sample))
    assert (high - low) / 2 == pytest.approx(half, rel=0.05)


def test_groups_get_one_ci_each_and_empty_groups_get_nan():
    bounds = percentile_bootstrap_ci([np.full(5, 0.25), np.array([]), np.full(3, 1.0)], n_resamples=100)
    assert bounds.shape == (3, 2)
    assert list(bounds[0]) == [0.25, 0.25] and list(bounds[2]) == [1.0, 1.0]
    assert np.isnan(bounds[1]).all()


def test_wilson_interval_matches_the_closed_form_for_8_of_10():
    p, n, z = 0.8, 10, Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_stays_inside_zero_one_at_the_extremes():
    assert wilson_interval(0, 5)[0] == pytest.approx(0.0)
    assert wilson_interval(5, 5)[1] == pytest.approx(1.0)


def test_bradley_terry_three_to_one_gives_a_log_three_rating_gap():
    ratings = bradley_terry([[0, 3], [1, 0]], reference=1)
    assert ratings[1] == 0.0
    assert ratings[0] == pytest.approx(math.log(3))


def test_bradley_terry_counts_ties_as_half_a_win():
    # A beats B twice and they tie twice: A has 3 of 4 points → log 3.
    wins = win_matrix([0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0.5, 0.5], players=2)
    assert wins.tolist() == [[0, 3], [1, 0]]
    assert bradley_terry(wins)[1] == pytest.approx(-math.log(3))


def test_bradley_terry_recovers_a_transitive_three_player_scale():
    # p = (4, 2, 1): expected wins out of 12 games per pair.
    strengths = np.array([4.0, 2.0, 1.0])
    wins = np.array([[0 if i == j else 12 * strengths[i] / (strengths[i] + strengths[j]) for j in range(3)]
                     for i in range(3)])
    assert bradley_terry(wins, reference=2) == pytest.approx(np.log(strengths / strengths[2]))


def test_bradley_terry_bootstrap_ci_contains_the_estimate_and_the_reference_is_zero_width():
    first, second = np.zeros(40, int), np.ones(40, int)
    score_ = np.r_[np.ones(30), np.zeros(10)]
    bounds = bootstrap_bradley_terry(first, second, score_, players=2, reference=1, n_resamples=500)
    assert list(bounds[1]) == [0.0, 0.0]
    assert bounds[0, 0] < math.log(3) < bounds[0, 1]


def test_ranks_tie_when_cis_overlap_the_tier_leader():
    # a overlaps nobody below; b and c overlap; d overlaps c but not the tier leader b.
    ranks = ranks_with_ties([0.9, 0.6, 0.55, 0.45], [0.85, 0.5, 0.45, 0.35], [0.95, 0.7, 0.65, 0.48])
    assert ranks == [1, 2, 2, 4]


# ── scoring ─────────────────────────────────────────────────────────────────────────────────────

def test_main_table_mean_utility_excludes_error_episodes(two_policies):
    table = score([two_policies], bootstrap=500)
    rows = {r["policy"]: r for r in table.records()}
    assert rows["a"]["overall"].value == pytest.approx(0.4)  # (0.2 + 0.4 + 0.6 + 0.8 + 0) / 5, error dropped
    assert rows["a"]["n"] == 5 and rows["a"]["errors"] == 1
    assert rows["b"]["overall"] == Estimate(pytest.approx(0.1), pytest.approx(0.1), pytest.approx(0.1))
    assert rows["b"]["debt"] is None and rows["a"]["student"] is None
    assert rows["a"]["rank"] == 1 and rows["b"]["rank"] == 2


def test_metrics_table_rates_and_rounds(two_policies):
    rows = {(r["policy"], r["domain"]): r for r in score(two_policies, table="metrics", bootstrap=200).records()}
    a = rows["a", "overall"]
    assert a["agreement"].value == pytest.approx(0.8)
    assert (a["agreement"].low, a["agreement"].high) == pytest.approx(wilson_interval(4, 5))
    assert a["walkaway"].value == pytest.approx(0.2)
    assert a["rounds"] == 4.0 and a["errors"] == 1
    assert rows["b", "student"]["agreement"].value == 1.0


def test_expression_fidelity_counts_focal_turns_with_a_declared_emotion(tmp_path):
    turns = [turn(0, "focal", "anger", "anger"), turn(1, "counterparty", "joy", "fear"),
             turn(2, "focal", "anger", "neutral"), turn(3, "focal", None, "joy"), turn(4, "focal", "joy", None)]
    path = write(tmp_path / "f.parquet", [episode("a", 0.5, turns=turns)])
    row = next(r for r in score(path, table="metrics", bootstrap=10).records() if r["domain"] == "overall")
    assert row["fidelity"] == pytest.approx(1 / 3)  # 1 match out of 3 declared focal turns


def test_emotions_table_uses_fixed_emotion_episodes(tmp_path):
    anger = [turn(0, "focal", "anger", "anger"), turn(1, "counterparty"), turn(2, "focal", "anger", "anger")]
    mixed = [turn(0, "focal", "joy", "joy"), turn(2, "focal", "anger", "joy")]
    rows = [episode("fixed-anger", 0.2, task="t1", turns=anger), episode("fixed-anger", 0.4, task="t2", turns=anger),
            episode("random", 0.9, task="t3", turns=mixed)]
    table = score(write(tmp_path / "e.parquet", rows), table="emotions", bootstrap=100)
    (row,) = table.records()
    assert (row["emotion"], row["method"], row["n"]) == ("anger", "fixed", 2)
    assert row["utility"].value == pytest.approx(0.3) and row["fidelity"] == 1.0


def test_emotions_table_falls_back_to_per_turn_association(tmp_path):
    rows = [episode("r", 0.2, task="t1", turns=[turn(0, "focal", "joy", "joy"), turn(1, "focal", "anger", "joy")]),
            episode("r", 0.6, task="t2", turns=[turn(0, "focal", "joy", "joy"), turn(1, "focal", "fear", "fear")])]
    records = {r["emotion"]: r for r in score(write(tmp_path / "p.parquet", rows), table="emotions",
                                              bootstrap=100).records()}
    assert records["joy"]["method"] == "per-turn" and records["joy"]["n"] == 2
    assert records["joy"]["utility"].value == pytest.approx(0.4)
    assert records["anger"]["utility"].value == pytest.approx(0.2) and records["anger"]["fidelity"] == 0.0


def test_transfer_table_splits_seen_and_unseen_counterparties(tmp_path):
    rows = [episode("a", 0.6, task="t1"), episode("a", 0.2, task="t2", split="test_unseen_counterparty")]
    table = score(write(tmp_path / "t.parquet", rows), table="transfer", bootstrap=100)
    assert table.columns == ["policy", "protocol", "test", "test_unseen_counterparty"]
    (row,) = table.records()
    assert row["test"].value == pytest.approx(0.6) and row["test_unseen_counterparty"].value == pytest.approx(0.2)


def test_ablation_difference_is_paired_over_shared_tasks(tmp_path):
    rows = [episode("a", 0.5 + 0.1 * i, task=f"t{i}") for i in range(4)]
    rows += [episode("b", 0.3 + 0.1 * i, task=f"t{i}") for i in range(3)]  # t3 not shared
    table = score(write(tmp_path / "a.parquet", rows), table="ablation", bootstrap=500, pairs=[("a", "b")])
    (row,) = table.records()
    assert row["shared_tasks"] == 3
    assert row["difference"] == Estimate(pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.2))


def test_tournament_win_rule_and_anchor(tmp_path):
    rows = [episode("vanilla-slm", u, task=f"t{i}", counterparty="persona", ending=e)
            for i, (u, e) in enumerate([(0.7, "agreement"), (0.3, "agreement"), (0.5, "agreement"),
                                        (0.0, "turn_limit"), (0.0, "walkaway")])]
    table = score(write(tmp_path / "g.parquet", rows), table="tournament", bootstrap=200)
    records = {r["agent"]: r for r in table.records()}
    assert (records["vanilla-slm"]["wins"], records["vanilla-slm"]["ties"], records["vanilla-slm"]["losses"]) == (1, 2, 2)
    assert (records["persona"]["wins"], records["persona"]["losses"]) == (2, 1)
    assert records["vanilla-slm"]["rating"].value == 0.0 and table.meta["anchor"] == "vanilla-slm"
    # Points: vanilla 1 win + 2 half-ties = 2, persona 2 wins + 2 half-ties = 3; the prior adds ½ each.
    assert records["persona"]["rating"].value == pytest.approx(math.log(3.5 / 2.5))


def test_every_output_format_renders(two_policies):
    table = score(two_policies, bootstrap=100)
    markdown = table.to_markdown().splitlines()
    assert markdown[0].startswith("| rank | policy |") and set(markdown[1]) <= {"|", "-"}
    parsed = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert float(parsed[0]["overall"]) == pytest.approx(0.4) and "overall_low" in parsed[0]
    loaded = json.loads(table.to_json())
    assert loaded["rows"][0]["overall"]["value"] == pytest.approx(0.4)
    assert loaded["rows"][0]["student"] is None
    assert "\\begin{tabular}" in table.to_latex() and "\\end{tabular}" in table.to_latex()
    assert Table("x", ["a_b"], [["50%"]]).to_latex().count("\\_") == 1


def test_missing_file_is_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match="nope.parquet.*not found"):
        score([tmp_path / "nope.parquet"])


def test_non_parquet_file_is_an_input_error(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="bad.parquet.*not a Parquet file"):
        score([tmp_path / "bad.parquet"])


def test_missing_columns_are_an_input_error(tmp_path):
    pq.write_table(pa.table({"episode_id": ["e"], "utility": [0.5]}), tmp_path / "thin.parquet")
    with pytest.raises(InputError, match="thin.parquet.*missing columns.*focal_agent"):
        score([tmp_path / "thin.parquet"])


def test_scores_union_several_files(tmp_path):
    first = write(tmp_path / "1.parquet", [episode("a", 0.2, task="t1")])
    second = write(tmp_path / "2.parquet", [episode("a", 0.6, task="t2")])
    (row,) = score([first, second], bootstrap=10).records()
    assert row["n"] == 2 and row["overall"].value == pytest.approx(0.4)


def test_real_small_release_has_a_row_per_policy_with_cis_around_the_means(tmp_path_factory, recognizer):
    from builders.build import build
    from builders.config import load_config

    out = tmp_path_factory.mktemp("release")
    build(load_config("builders/configs/emoneg-v1.yaml", "small"), out, progress=False)
    paths = sorted(out.glob("**/data/episodes/*.parquet"))
    table = score(paths, bootstrap=1000)
    policies = {p for p, in duckdb.sql(
        f"SELECT DISTINCT focal_agent FROM read_parquet({[str(p) for p in paths]})").fetchall()}
    assert {r["policy"] for r in table.records()} == policies
    for row in table.records():
        assert row["overall"].low <= row["overall"].value <= row["overall"].high


def test_the_headroom_table_shows_the_share_of_the_random_to_reference_gap_each_selector_closes(tmp_path):
    rows = []
    for persona, (random_, learned, reference) in {"firm": (0.2, 0.3, 0.4), "soft": (0.5, 0.5, 0.9)}.items():
        for policy, utility in (("teacher", random_), ("iql-teacher", learned), ("persona-best-fixed-teacher", reference)):
            for i in range(3):
                rows.append(episode(policy, utility, task=f"{persona}-{i}") | {"persona": persona})
    table = score(write(tmp_path / "h.parquet", rows), table="headroom", bootstrap=100)
    assert table.columns == ["split", "persona", "n", "teacher", "iql-teacher", "iql-teacher gap closed",
                             "persona-best-fixed-teacher"]
    records = {r["persona"]: r for r in table.records()}
    assert records["firm"]["iql-teacher gap closed"] == pytest.approx(0.5)
    assert records["soft"]["iql-teacher gap closed"] == pytest.approx(0.0)
    # over the split: (0.4 − 0.35) / (0.65 − 0.35)
    assert records["all"]["iql-teacher gap closed"] == pytest.approx(1 / 6)
    assert records["all"]["n"] == 6
    with pytest.raises(InputError, match="needs episodes of 'persona-best-fixed-teacher'"):
        score(write(tmp_path / "no-ref.parquet", [r for r in rows if r["focal_agent"] != "persona-best-fixed-teacher"]),
              table="headroom", bootstrap=100)


def test_tables_show_each_policys_protocol_and_its_invalid_moves(tmp_path):
    invalid = [turn(0, "focal", "joy", "joy") | {"offer_status": "invalid"}, turn(1, "counterparty"),
               turn(2, "focal", "joy", "joy"), turn(3, "counterparty")]
    rows = [episode("lm", 0.0, "breakdown", task="t0", turns=invalid) | {"protocol": "structured"},
            episode("lm", 0.5, task="t1") | {"protocol": "structured"},
            episode("old", 0.5, task="t0") | {"protocol": None}]
    schema = features("episodes").arrow_schema.append(pa.field("protocol", pa.string()))
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    main = {r["policy"]: r for r in score(path, table="main", bootstrap=100).records()}
    assert main["lm"]["protocol"] == "structured" and main["old"]["protocol"] == "–"
    metrics = {(r["policy"], r["domain"]): r for r in score(path, table="metrics", bootstrap=100).records()}
    assert metrics["lm", "overall"]["invalid_moves"] == pytest.approx(1 / 3)
    assert metrics["lm", "overall"]["breakdown"].value == pytest.approx(0.5)
