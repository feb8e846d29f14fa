import json

import numpy as np
import pytest

from emoneg_bench.agents import phrasing
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.perception.recognizer import METADATA, WEIGHTS, EmotionRecognizer


def test_distribution_covers_goemotions_and_sums_to_one(recognizer):
    proba = recognizer.predict_proba(["I am absolutely furious with how this has been handled.", "We have a deal."])
    assert proba.shape == (2, 28)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_training_clauses_are_recognised(recognizer):
    texts = [phrasing.emotion_clauses(e, split="train")[0] for e in GOEMOTIONS]
    assert [label for label, _ in recognizer.perceive(texts)] == list(GOEMOTIONS)


def test_it_reports_accuracy_per_source_on_text_it_never_trained_on(recognizer):
    metrics = recognizer.metrics
    for source in ("held_out:teacher_clauses", "held_out:expressions", "held_out:independent"):
        assert metrics[source]["n"] > 100
        # far above chance (1/28 exact, 1/6 family) but honestly below the training accuracy
        assert 0.3 < metrics[source]["accuracy"] < metrics["train:teacher"]["accuracy"]
        assert metrics[source]["family_accuracy"] >= metrics[source]["accuracy"]
    assert metrics["train:teacher"]["accuracy"] > 0.95


def test_it_is_trained_on_more_than_the_teachers_wording(recognizer):
    assert recognizer.metrics["train:expressions"]["n"] >= 28 * 18


def test_save_and_load_round_trip_without_pickle(recognizer, tmp_path):
    recognizer.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([METADATA, WEIGHTS])
    meta = json.loads((tmp_path / METADATA).read_text())
    assert meta["labels"] == list(GOEMOTIONS) and len(meta["vocabulary"]) > 1000
    loaded = EmotionRecognizer.load(tmp_path)
    texts = [s for s, _ in phrasing.independent_eval_set()[:50]]
    assert np.array_equal(loaded.predict_proba(texts), recognizer.predict_proba(texts))


def test_perception_does_not_depend_on_batch_composition(recognizer):
    texts = [s for s, _ in phrasing.independent_eval_set()[:40]]
    alone = [recognizer.perceive([t])[0] for t in texts]
    assert recognizer.perceive(texts) == alone


def test_empty_batch_perceives_nothing(recognizer):
    assert recognizer.perceive([]) == []


def test_loading_a_recognizer_with_other_labels_is_refused(recognizer, tmp_path):
    recognizer.save(tmp_path)
    meta = json.loads((tmp_path / METADATA).read_text())
    meta["labels"] = meta["labels"][::-1]
    (tmp_path / METADATA).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="labels do not match"):
        EmotionRecognizer.load(tmp_path)
