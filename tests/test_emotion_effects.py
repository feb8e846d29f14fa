"""The documented directions of the counterparty model (docs/counterparty.md), over many seeds."""

from statistics import mean

import pytest

from emoneg_bench.agents import phrasing
from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.teacher import TeacherAgent
from emoneg_bench.domains import domain_ids, generate_scenarios
from emoneg_bench.emotions import FAMILY_OF, Family
from emoneg_bench.engine import Agent
from emoneg_bench.negotiation import Ending, Role, Task

N_PER_DOMAIN = 100


def run(engine, persona, schedule, n=N_PER_DOMAIN):
    tasks = [Task(s, persona, seed) for d in domain_ids()
             for seed, s in enumerate(generate_scenarios(d, 80, seed=0) * (n // 80 + 1)) if seed < n]
    return list(engine.run(tasks, TeacherAgent(schedule), PersonaAgent(persona)))


def utility(episodes):
    return mean(e.outcome.utility for e in episodes)


def walkaway_rate(episodes):
    return mean(e.outcome.ending is Ending.WALKAWAY for e in episodes)


def counterparty_concession(episodes):
    """Mean total concession of the counterparty per episode, in its own space (0 = none, 1 = to our anchor)."""
    totals = []
    for e in episodes:
        s = e.task.scenario
        offers = [u.offer for u in e.turns_of(Role.COUNTERPARTY) if u.offer is not None]
        if offers:
            totals.append((offers[-1] - s.counterparty_anchor) / (s.focal_anchor - s.counterparty_anchor))
    return mean(totals)


@pytest.fixture(scope="module")
def neutral_vs_pushover(engine):
    return run(engine, "pushover", "fixed-neutral")


def test_sustained_anger_beats_neutral_against_a_low_power_persona(engine, neutral_vs_pushover):
    angry = run(engine, "pushover", "fixed-anger")
    assert utility(angry) > utility(neutral_vs_pushover) + 0.03


def test_sustained_anger_causes_more_walkaways_than_neutral(engine, neutral_vs_pushover):
    angry = run(engine, "pushover", "fixed-anger")
    assert walkaway_rate(angry) > walkaway_rate(neutral_vs_pushover) + 0.05


def test_anger_backfires_against_a_high_power_persona(engine):
    assert utility(run(engine, "hardliner", "fixed-anger")) < utility(run(engine, "hardliner", "fixed-neutral"))


def test_measured_anger_beats_sustained_anger_the_inverted_u(engine):
    measured = run(engine, "anxious-debtor", "given:anger+anger+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral+neutral")
    sustained = run(engine, "anxious-debtor", "fixed-anger")
    assert utility(measured) > utility(sustained)


def test_guilt_yields_smaller_counterparty_concessions_than_neutral(engine):
    assert counterparty_concession(run(engine, "conceder", "fixed-remorse")) < \
        counterparty_concession(run(engine, "conceder", "fixed-neutral"))


def test_supplication_works_on_a_trusting_persona(engine):
    assert utility(run(engine, "empath", "fixed-sadness")) > utility(run(engine, "empath", "fixed-neutral"))


class Speaks(Agent):
    """The neutral teacher's offers, always phrased with one fixed sentence of a chosen emotion."""

    def __init__(self, sentence):
        self.inner, self.sentence, self.name = TeacherAgent("fixed-neutral"), sentence, "speaks"

    def start(self, *args):
        return self.inner.start(*args)

    def act(self, turns):
        from dataclasses import replace

        return [replace(m, text=f"{self.sentence} I propose {m.offer} days.") for m in self.inner.act(turns)]


PLEA = phrasing.emotion_clauses("sadness", split="train")[0]


def test_a_persona_with_trust_zero_ignores_supplication(engine, recognizer):
    assert FAMILY_OF[recognizer.perceive([f"{PLEA} I propose 30 days."])[0][0]] is Family.SUPPLICATION
    tasks = [Task(s, "skeptic", i) for i, s in enumerate(generate_scenarios("debt", 60, seed=0))]
    pleading = list(engine.run(tasks, Speaks(PLEA), PersonaAgent("skeptic")))
    plain = list(engine.run(tasks, Speaks("Here is where I stand."), PersonaAgent("skeptic")))
    for a, b in zip(pleading, plain):
        assert [u.offer for u in a.turns_of(Role.COUNTERPARTY)] == [u.offer for u in b.turns_of(Role.COUNTERPARTY)]
        assert a.outcome == b.outcome
    # the same plea moves a trusting persona
    trusting = [Task(t.scenario, "empath", t.seed) for t in tasks]
    assert utility(engine.run(trusting, Speaks(PLEA), PersonaAgent("empath"))) > \
        utility(engine.run(trusting, Speaks("Here is where I stand."), PersonaAgent("empath")))


class DeclaresAnger(Agent):
    """Writes the neutral teacher's text but declares anger: asked to be angry, does not sound angry."""

    def __init__(self):
        self.inner, self.name = TeacherAgent("fixed-neutral"), "declares-anger"

    def start(self, *args):
        return self.inner.start(*args)

    def act(self, turns):
        from dataclasses import replace

        return [replace(move, declared_emotion="anger") for move in self.inner.act(turns)]


def test_declared_anger_phrased_neutrally_gets_no_anger_effect(engine):
    tasks = [Task(s, "pushover", i) for i, s in enumerate(generate_scenarios("debt", 60, seed=0))]
    pretend = list(engine.run(tasks, DeclaresAnger(), PersonaAgent("pushover")))
    neutral = list(engine.run(tasks, TeacherAgent("fixed-neutral"), PersonaAgent("pushover")))
    angry = list(engine.run(tasks, TeacherAgent("fixed-anger"), PersonaAgent("pushover")))
    assert all(u.declared_emotion == "anger" for e in pretend for u in e.turns_of(Role.FOCAL))
    for a, b in zip(pretend, neutral):
        assert a.turns_of(Role.COUNTERPARTY) == b.turns_of(Role.COUNTERPARTY)
        assert a.outcome == b.outcome
    assert [e.outcome for e in angry] != [e.outcome for e in neutral]
