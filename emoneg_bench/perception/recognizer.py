"""The built-in emotion recognizer: text → distribution over GoEmotions-28.

TF-IDF over word uni- and bigrams with a multinomial logistic regression, trained on two sources so it
does not merely learn the teacher's wording:

- ``teacher``: the phrasing bank's *training* clauses (the first 12 of 16 per emotion), alone and
  composed into full negotiation messages;
- ``expressions``: a separate corpus of emotional sentences in other registers (chat, email, terse
  remarks; ``data/expressions.json``), first 18 of 24 per emotion.

It is honest about its accuracy: :func:`evaluate` reports exact and family accuracy per source on text it
never saw — messages built from the 4 held-out teacher clauses, the 6 held-out expressions, and an
independent set written for evaluation only.

Persisted without pickle: the vocabulary and metrics as JSON, the weights as safetensors.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..emotions import FAMILY_OF, GOEMOTIONS

WEIGHTS, METADATA = "recognizer.safetensors", "recognizer.json"


@dataclass(frozen=True)
class RecognizerConfig:
    seed: int = 0
    messages_per_clause: int = 6  # composed messages per training clause (plus the clause alone)
    expression_weight: int = 6  # repeats of each expression, so both sources weigh about the same
    ngram_max: int = 2
    min_df: int = 1
    regularisation: float = 8.0  # logistic regression C


class EmotionRecognizer:
    """Fitted parameters plus a fast batched ``perceive``."""

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 config: RecognizerConfig, metrics: dict | None = None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.config, self.metrics = config, metrics or {}
        self.labels = GOEMOTIONS
        self.vocabulary = list(vocabulary)
        self._vectorizer = TfidfVectorizer(ngram_range=(1, config.ngram_max), sublinear_tf=True,
                                           vocabulary={term: i for i, term in enumerate(self.vocabulary)},
                                           dtype=np.float32)
        self._vectorizer.idf_ = idf.astype(np.float64)
        self._coef_t = np.ascontiguousarray(coef.T, dtype=np.float32)
        self._intercept = intercept.astype(np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        logits = self._vectorizer.transform(texts) @ self._coef_t + self._intercept
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        return logits / logits.sum(axis=1, keepdims=True)

    def perceive(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        if not texts:
            return []
        proba = self.predict_proba(texts)
        best = proba.argmax(axis=1)
        confidence = proba[np.arange(len(best)), best]
        return [(self.labels[i], float(c)) for i, c in zip(best.tolist(), confidence.tolist())]

    def save(self, folder: str | Path) -> None:
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"idf": self._vectorizer.idf_.astype(np.float32), "coef": self._coef_t.T.copy(),
                   "intercept": self._intercept}, str(folder / WEIGHTS))
        meta = {"labels": list(self.labels), "vocabulary": self.vocabulary, "config": asdict(self.config),
                "metrics": self.metrics, "toolkit_version": __version__}
        (folder / METADATA).write_text(json.dumps(meta, indent=1, sort_keys=True))

    @classmethod
    def load(cls, folder: str | Path) -> EmotionRecognizer:
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta = json.loads((folder / METADATA).read_text())
        if tuple(meta["labels"]) != GOEMOTIONS:
            raise ValueError(f"{folder}: recognizer labels do not match GoEmotions-28")
        weights = load_file(str(folder / WEIGHTS))
        return cls(meta["vocabulary"], weights["idf"], weights["coef"], weights["intercept"],
                   RecognizerConfig(**meta["config"]), meta["metrics"])


def _messages(split: str, per_clause: int, seed: int) -> tuple[list[str], list[int]]:
    """Clauses of ``split`` alone and composed into messages across domains and roles."""
    from ..agents import phrasing
    from ..domains import domain_ids, generate_scenarios, get_domain
    from .offers import format_offer

    rng = random.Random(f"recognizer/{split}/{seed}")
    scenarios = {d: generate_scenarios(d, 8, seed) for d in domain_ids()}
    texts, labels = [], []
    for label, emotion in enumerate(GOEMOTIONS):
        for clause in phrasing.emotion_clauses(emotion, split=split):
            texts.append(clause)
            labels.append(label)
        for _ in range(per_clause * len(phrasing.emotion_clauses(emotion, split=split))):
            domain = rng.choice(sorted(scenarios))
            scenario = rng.choice(scenarios[domain])
            lo, hi = sorted((scenario.focal_anchor, scenario.counterparty_anchor))
            offer = format_offer(rng.randint(lo, hi), get_domain(domain).unit)
            role = rng.choice(("focal", "counterparty"))
            texts.append(phrasing.compose_message(domain, role, emotion, offer, scenario.slots(), rng,
                                                  clauses=split))
            labels.append(label)
    return texts, labels


HELD_OUT_EXPRESSIONS = 6


def _expressions(split: str) -> tuple[list[str], list[int]]:
    """The expressions corpus: the first 18 per emotion train, the last 6 are held out."""
    from importlib import resources

    corpus = json.loads(resources.files("emoneg_bench").joinpath("data/expressions.json").read_text())["expressions"]
    texts, labels = [], []
    for label, emotion in enumerate(GOEMOTIONS):
        sentences = corpus[emotion]
        chosen = sentences[:-HELD_OUT_EXPRESSIONS] if split == "train" else sentences[-HELD_OUT_EXPRESSIONS:]
        texts.extend(chosen)
        labels.extend([label] * len(chosen))
    return texts, labels


def train_recognizer(config: RecognizerConfig = RecognizerConfig()) -> EmotionRecognizer:
    """Fit on both training sources; attach held-out metrics (see :func:`evaluate`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    teacher = _messages("train", config.messages_per_clause, config.seed)
    expressions = _expressions("train")
    texts = teacher[0] + expressions[0] * config.expression_weight
    labels = teacher[1] + expressions[1] * config.expression_weight
    vectorizer = TfidfVectorizer(ngram_range=(1, config.ngram_max), sublinear_tf=True, min_df=config.min_df,
                                 dtype=np.float32)
    features = vectorizer.fit_transform(texts)
    model = LogisticRegression(C=config.regularisation, max_iter=3000)
    model.fit(features, labels)
    vocabulary = vectorizer.get_feature_names_out().tolist()
    recognizer = EmotionRecognizer(vocabulary, vectorizer.idf_, model.coef_, model.intercept_, config)
    recognizer.metrics = evaluate(recognizer, training={"train:teacher": teacher, "train:expressions": expressions})
    return recognizer


def evaluate(recognizer: EmotionRecognizer, training: dict | None = None) -> dict:
    """Accuracy (exact label and emotion family) per source of text the recognizer never trained on:
    messages built from held-out teacher clauses, held-out expressions, the independent set (and the
    training sources when given, to show the gap)."""
    from ..agents import phrasing

    independent = phrasing.independent_eval_set()
    sources = {
        "held_out:teacher_clauses": _messages("held_out", recognizer.config.messages_per_clause,
                                              recognizer.config.seed + 1),
        "held_out:expressions": _expressions("held_out"),
        "held_out:independent": ([t for t, _ in independent], [GOEMOTIONS.index(e) for _, e in independent]),
        **(training or {}),
    }
    report = {}
    for source, (texts, labels) in sources.items():
        predicted = recognizer.predict_proba(texts).argmax(axis=1)
        exact = float(np.mean(predicted == np.asarray(labels)))
        family = float(np.mean([FAMILY_OF[GOEMOTIONS[p]] == FAMILY_OF[GOEMOTIONS[t]]
                                for p, t in zip(predicted.tolist(), labels)]))
        report[source] = {"n": len(texts), "accuracy": round(exact, 4), "family_accuracy": round(family, 4)}
    return report


def default_recognizer(config: RecognizerConfig = RecognizerConfig()) -> EmotionRecognizer:
    """The recognizer for this toolkit version and phrasing bank, trained once and cached."""
    from importlib import resources

    from ..cache import cached_folder

    data = resources.files("emoneg_bench").joinpath("data")
    bank = data.joinpath("phrases.json").read_bytes() + data.joinpath("expressions.json").read_bytes()
    key = hashlib.sha256(bank + json.dumps(asdict(config), sort_keys=True).encode() + __version__.encode())
    folder = cached_folder(f"recognizer-{key.hexdigest()[:16]}", lambda tmp: train_recognizer(config).save(tmp))
    return EmotionRecognizer.load(folder)
