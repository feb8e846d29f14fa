from dataclasses import replace

import pytest

from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.agents.replay import differences, replay
from emoneg_bench.agents.teacher import TeacherAgent
from emoneg_bench.domains import domain_ids, generate_scenarios
from emoneg_bench.engine import Agent, Engine
from emoneg_bench.negotiation import Act, Ending, Move, Role, Task


def tasks(domain="debt", persona="conceder", n=12, seed=0):
    scenarios = generate_scenarios(domain, 80, seed=0)
    return [Task(scenarios[i % 80], persona, seed + i) for i in range(n)]


class Scripted(Agent):
    """Says the same thing every turn."""

    def __init__(self, text, act=Act.OFFER, offer=None):
        self.name, self.move = "scripted", Move(text, act, offer, "neutral")

    def act(self, turns):
        return [self.move for _ in turns]


@pytest.mark.parametrize("domain", domain_ids())
def test_same_seeds_give_identical_transcripts(engine, domain):
    first = list(engine.run(tasks(domain), TeacherAgent("random"), PersonaAgent("boulware")))
    second = list(engine.run(tasks(domain), TeacherAgent("random"), PersonaAgent("boulware")))
    assert first == second
    assert len({e.utterances[0].text for e in first}) > 1


def test_different_seeds_give_different_transcripts(engine):
    a = engine.play(tasks(n=1, seed=0)[0], TeacherAgent("random"), PersonaAgent("boulware"))
    b = engine.play(replace(tasks(n=1, seed=0)[0], seed=99), TeacherAgent("random"), PersonaAgent("boulware"))
    assert a.utterances != b.utterances


def test_batch_size_does_not_change_any_episode(engine):
    batch = tasks("student", "empath", n=20)
    whole = list(engine.run(batch, TeacherAgent("random"), PersonaAgent("empath"), batch_size=512))
    pieces = list(engine.run(batch, TeacherAgent("random"), PersonaAgent("empath"), batch_size=3))
    assert whole == pieces


@pytest.mark.parametrize("slots", [1, 3, 7])
def test_refilled_slots_play_the_same_episodes_in_task_order(engine, slots):
    """Continuous batching (a finished episode's slot takes the next task) changes no episode and no order,
    with personas of different paces so that episodes end at different turns."""
    batch = [replace(t, persona=p) for t, p in zip(tasks("hospital", n=24),
                                                   ["pushover", "hardliner", "conceder", "boulware"] * 6)]
    lock_step = list(engine.run(batch, TeacherAgent("random"), PersonaAgent(), batch_size=512))
    refilled = list(engine.run(batch, TeacherAgent("random"), PersonaAgent(), batch_size=slots, refill=True))
    assert len({len(e.utterances) for e in lock_step}) > 1  # episodes really end at different turns
    assert refilled == lock_step


class Counting(Agent):
    """The teacher, counting how many contexts each call gets and checking they are all of one role."""

    def __init__(self):
        self.inner, self.name, self.calls = TeacherAgent("random"), "counting", []

    def start(self, *args):
        return self.inner.start(*args)

    def act(self, turns):
        assert len({t.role for t in turns}) == 1
        self.calls.append(len(turns))
        return self.inner.act(turns)


def test_refilling_keeps_the_slots_full_while_tasks_remain(engine):
    agent = Counting()
    batch = [replace(t, persona=p) for t, p in zip(tasks("debt", n=30), ["pushover", "hardliner"] * 15)]
    episodes = list(engine.run(batch, agent, PersonaAgent(), batch_size=6, refill=True))
    assert len(episodes) == 30
    # while tasks remain, every step has 6 live episodes, split between the focal and counterparty turns
    assert max(agent.calls) <= 6 and sum(agent.calls) == sum(len(e.turns_of(Role.FOCAL)) for e in episodes)


@pytest.mark.parametrize("domain", domain_ids())
def test_replaying_the_counterparty_on_recorded_focal_messages_reproduces_everything(engine, domain):
    recorded = list(engine.run(tasks(domain, "boulware", n=24), TeacherAgent("random"), PersonaAgent("boulware")))
    replayed = replay(recorded, PersonaAgent("boulware"), engine)
    assert replayed == recorded
    assert all(differences(a, b) == [] for a, b in zip(recorded, replayed))
    assert len({e.outcome.ending for e in recorded}) >= 2  # more than one kind of ending was replayed


def test_replay_detects_a_changed_counterparty(engine):
    recorded = list(engine.run(tasks(n=8), TeacherAgent("random"), PersonaAgent("pushover")))
    replayed = replay(recorded, PersonaAgent("shark"), engine)
    found = [differences(a, b) for a, b in zip(recorded, replayed)]
    assert all(found)
    assert found[0][0].turn == 1 and "counterparty message differs" in found[0][0].what


def test_replay_reports_a_recording_that_runs_out(engine):
    recorded = list(engine.run(tasks(n=4), TeacherAgent("random"), PersonaAgent("pushover")))
    truncated = [replace(e, utterances=e.utterances[:3]) for e in recorded]
    replayed = replay(truncated, PersonaAgent("pushover"), engine)
    assert all(any("ending differs" in d.what for d in differences(a, b)) for a, b in zip(truncated, replayed))


def test_focal_opens_and_speakers_alternate(engine):
    for episode in engine.run(tasks(n=6), TeacherAgent("random"), PersonaAgent("conceder")):
        roles = [u.role for u in episode.utterances]
        assert roles[0] is Role.FOCAL
        assert all(a is not b for a, b in zip(roles, roles[1:]))
        assert [u.turn for u in episode.utterances] == list(range(len(roles)))


def test_turn_limit_is_truncation_not_failure(recognizer):
    engine = Engine(recognizer, max_turns=4)
    episode = engine.play(tasks(n=1)[0], TeacherAgent("fixed-neutral"), PersonaAgent("shark"))
    assert episode.outcome.ending is Ending.TURN_LIMIT
    assert episode.outcome.rounds == 4 and episode.outcome.utility == 0.0 and episode.outcome.ended_by is None


def test_acceptance_closes_the_deal_at_the_standing_offer(engine):
    task = tasks(n=1)[0]
    episode = engine.play(task, Scripted("I propose 60 days."), Scripted("Deal.", Act.ACCEPT))
    assert episode.outcome.ending is Ending.AGREEMENT
    assert episode.outcome.agreed_value == 60 and episode.outcome.rounds == 2
    assert episode.outcome.ended_by is Role.COUNTERPARTY
    a, b = task.scenario.focal_anchor, task.scenario.counterparty_anchor
    assert episode.outcome.utility == pytest.approx((b - 60) / (b - a))


def test_offers_within_tolerance_close_the_deal(engine):
    episode = engine.play(tasks(n=1)[0], Scripted("I propose 60 days."), Scripted("I can do 62 days."))
    assert episode.outcome.ending is Ending.AGREEMENT and episode.outcome.agreed_value == 62


def test_offers_further_apart_than_tolerance_do_not(engine):
    episode = engine.play(tasks(n=1)[0], Scripted("I propose 60 days."), Scripted("I can do 63 days."))
    assert episode.outcome.ending is Ending.TURN_LIMIT


def test_walkaway_is_its_own_ending(engine):
    episode = engine.play(tasks(n=1)[0], Scripted("I propose 20 days."), Scripted("I'm done.", Act.WALKAWAY))
    assert episode.outcome.ending is Ending.WALKAWAY and episode.outcome.ended_by is Role.COUNTERPARTY
    assert episode.outcome.utility == 0.0


def test_repeated_unreadable_offers_end_in_breakdown(engine):
    episode = engine.play(tasks(n=1)[0], Scripted("Let us talk about it."), Scripted("I can do 90 days."))
    assert episode.outcome.ending is Ending.BREAKDOWN and episode.outcome.ended_by is Role.FOCAL
    assert [u.offer_status for u in episode.turns_of(Role.FOCAL)] == ["no_offer"] * 3
    assert episode.outcome.rounds == 5


def test_text_offers_are_read_by_the_unit_aware_parser(engine):
    episode = engine.play(tasks(n=1)[0], Scripted("How about three weeks?"), Scripted("I can do 21 days."))
    first = episode.utterances[0]
    assert first.offer == 21 and first.offer_status == "ok"
    assert episode.outcome.ending is Ending.AGREEMENT


def test_roles_can_be_swapped(engine):
    """A persona in the focal role against the teacher as counterparty: the corpus for a counterparty agent."""
    episodes = list(engine.run(tasks("hospital", "teacher", n=10), PersonaAgent("conceder"), TeacherAgent("random")))
    assert all(e.utterances[0].role is Role.FOCAL for e in episodes)
    assert any(e.outcome.ending is Ending.AGREEMENT for e in episodes)
    counterparty_emotions = {u.declared_emotion for e in episodes for u in e.turns_of(Role.COUNTERPARTY)}
    assert len(counterparty_emotions) > 5
