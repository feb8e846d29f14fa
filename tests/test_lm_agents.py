"""Language-model negotiators and the LM judge, on real models: a tiny random Llama for mechanics,
SmolLM2-135M-Instruct for full negotiations."""

import pytest

from emoneg_bench.agents.lm import LMJudge, LMNegotiator, clean_reply, parse_score
from emoneg_bench.agents.personas import PersonaAgent
from emoneg_bench.backends import SamplingParams, load_backend
from emoneg_bench.backends.openai_http import OpenAIChatBackend
from emoneg_bench.domains import domain_ids, generate_scenarios, get_domain
from emoneg_bench.emotions import emotion_instruction
from emoneg_bench.engine import Engine
from emoneg_bench.errors import InputError
from emoneg_bench.negotiation import Ending, Role, Task
from emoneg_bench.perception.offers import parse_offer
from emoneg_bench.prompts import negotiator_messages

SHORT = SamplingParams(max_new_tokens=12)


def tasks(persona="conceder", n=1):
    """The first scenario of the first ``n`` domains."""
    return [Task(generate_scenarios(d, 1, seed=0)[0], persona, 0) for d in domain_ids()[:n]]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_backend(str(tiny_model))


def test_prompts_carry_the_emotion_instruction_only_when_emotion_conditioned():
    scenario = generate_scenarios("debt", 1, seed=0)[0]
    domain = get_domain("debt")
    angry = negotiator_messages(domain, Role.FOCAL, scenario, [], "anger")
    vanilla = negotiator_messages(domain, Role.FOCAL, scenario, [], None)
    assert angry[0] == vanilla[0]  # what never changes comes first, the same for every emotion
    assert vanilla[0]["content"].startswith(domain.system_prompt("focal", scenario))
    assert angry[-1]["content"].startswith(emotion_instruction("anger"))
    assert emotion_instruction("anger") not in vanilla[-1]["content"]
    assert "You speak first" in vanilla[-1]["content"]
    text = negotiator_messages(domain, Role.FOCAL, scenario, [], None, protocol="text")
    assert f"I propose {scenario.focal_anchor} days" in text[-1]["content"]


def test_consecutive_prompts_extend_each_other_until_the_window_moves():
    from emoneg_bench.negotiation import Act, Utterance
    from emoneg_bench.prompts import WINDOW, window_start

    scenario = generate_scenarios("hospital", 1, seed=0)[0]
    domain = get_domain("hospital")
    history, prompts = [], []
    for turn in range(24):
        role = Role.FOCAL if turn % 2 == 0 else Role.COUNTERPARTY
        if role is Role.FOCAL:
            prompts.append(negotiator_messages(domain, Role.FOCAL, scenario, history, "sadness"))
        history.append(Utterance(turn, role, f"message {turn}", Act.OFFER, 100.0 + turn, "structured",
                                 "sadness" if role is Role.FOCAL else None, "neutral", 0.5))
    moved = 0
    for before, after in zip(prompts, prompts[1:]):
        if after[: len(before) - 1] == before[:-1]:  # the last user turn gains its answer, nothing else changes
            assert after[len(before) - 1]["content"] == before[-1]["content"]
        else:
            moved += 1
            assert after[1]["content"].startswith("Earlier offers: you ")
    assert moved == len({window_start(n) for n in range(len(prompts))}) - 1 >= 2  # every WINDOW own turns
    assert max(len(p) for p in prompts) == 4 * WINDOW  # system, < 2·WINDOW past exchanges, the new turn


def test_an_lm_negotiator_plays_either_role_and_its_text_goes_through_the_parser(engine, tiny):
    episodes = [engine.play(tasks()[0], LMNegotiator(tiny, "fixed-anger", SHORT, protocol="text"),
                            PersonaAgent("conceder")),
                engine.play(tasks()[0], PersonaAgent("conceder"),
                            LMNegotiator(tiny, "fixed-anger", SHORT, protocol="text"))]
    domain = get_domain("debt")
    for episode, lm_role in zip(episodes, (Role.FOCAL, Role.COUNTERPARTY)):
        said = episode.turns_of(lm_role)
        assert said and all(u.declared_emotion == "anger" and u.text for u in said)
        for u in said:  # offers come from the parser, not from a structured channel
            if u.act == "accept":  # an acceptance states the standing offer it accepts
                continue
            parsed = parse_offer(u.text, domain.unit, domain.offer_bounds)
            assert (u.offer, u.offer_status) == (parsed.value, str(parsed.status))
        assert episode.outcome.ending in (Ending.BREAKDOWN, Ending.TURN_LIMIT, Ending.AGREEMENT, Ending.WALKAWAY)


def test_a_structured_negotiator_states_every_offer_through_the_schema(engine, tiny):
    from emoneg_bench.protocol import MESSAGE_CHARS, offer_range

    for task in tasks(n=4):
        episode = engine.play(task, LMNegotiator(tiny, "fixed-joy", SamplingParams(max_new_tokens=200)),
                              PersonaAgent("conceder"))
        low, high = offer_range(task.scenario)
        for u in episode.turns_of(Role.FOCAL):
            assert u.offer_status in ("structured", "no_offer") and len(u.text) <= MESSAGE_CHARS
            if u.act == "offer":
                assert low <= u.offer <= high


def test_a_failed_model_request_ends_the_episode_as_error_not_a_crash(engine):
    dead = OpenAIChatBackend("http://127.0.0.1:9/v1", "nothing", timeout=0.5, retries=0)
    episodes = list(engine.run(tasks(n=4), LMNegotiator(dead, None, SHORT), PersonaAgent("conceder")))
    for episode in episodes:
        assert episode.outcome.ending is Ending.ERROR and episode.outcome.rounds == 1
        assert episode.utterances[0].offer_status == "error" and episode.utterances[0].error


def test_unknown_model_spec_is_a_clear_error():
    with pytest.raises(InputError, match="unknown model spec 'no-such-model'"):
        load_backend("no-such-model")
    with pytest.raises(InputError, match=r"needs the model name"):
        load_backend("http://127.0.0.1:8000/v1")


def test_replies_lose_an_echoed_speaker_label_and_a_cut_off_sentence():
    assert clean_reply("Creditor: I propose 20 days. I will not wai", "creditor") == "I propose 20 days."
    assert clean_reply("  I propose 20 days  ", "creditor") == "I propose 20 days"
    assert clean_reply("We need 3 weeks! Really.", "patient") == "We need 3 weeks! Really."


@pytest.mark.parametrize("reply, score", [("Score: 7", 7), ("I'd say 8/10.", 8), ("10", 10), ("score=3", 3),
                                          ("Twelve", None), ("Score: 12", None), ("", None)])
def test_judge_replies_are_parsed_strictly(reply, score):
    assert parse_score(reply) == score


def test_the_lm_judge_reports_missing_scores_with_reasons_not_a_silent_five(engine, tiny):
    episode = engine.play(tasks()[0], LMNegotiator(tiny, None, SHORT), PersonaAgent("conceder"))
    scores = LMJudge(tiny).score_episode(episode)
    assert [s.turn for s in scores] == [u.turn for u in episode.turns_of(Role.FOCAL)]
    for s in scores:
        assert (s.score is None and "no score" in s.reason) or (1 <= s.score <= 10)


@pytest.fixture(scope="module")
def smol(smollm2):
    return load_backend("smollm2")


@pytest.mark.slow
def test_smollm2_negotiates_in_every_domain_against_a_persona(recognizer, smol):
    engine = Engine(recognizer, max_turns=10)
    episodes = list(engine.run(tasks(n=4), LMNegotiator(smol, "fixed-neutral"), PersonaAgent()))
    assert {e.task.scenario.domain for e in episodes} == set(domain_ids())
    for episode in episodes:
        assert episode.outcome.ending not in (Ending.ERROR, Ending.BREAKDOWN)
        focal = episode.turns_of(Role.FOCAL)
        assert all(u.text and u.offer_status != "invalid" for u in focal)
    offers = [u for e in episodes for u in e.turns_of(Role.FOCAL) if u.offer_status == "structured"]
    assert len(offers) >= 2 * len(episodes)


@pytest.mark.slow
def test_smollm2_negotiates_against_itself(recognizer, smol):
    engine = Engine(recognizer, max_turns=8)
    model = LMNegotiator(smol, None)
    episodes = list(engine.run(tasks("lm", n=4), model, model))
    for episode in episodes:
        assert episode.outcome.ending is not Ending.ERROR
        assert {u.role for u in episode.utterances} == {Role.FOCAL, Role.COUNTERPARTY}
        assert all(u.text for u in episode.utterances)
    assert any(u.offer_status == "structured" for e in episodes for u in e.utterances)
