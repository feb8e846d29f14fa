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
    assert angry[0]["content"].endswith(emotion_instruction("anger"))
    assert vanilla[0]["content"] == domain.system_prompt("focal", scenario)
    assert "You speak first" in vanilla[1]["content"]
    assert f"I propose {scenario.focal_anchor} days" in vanilla[1]["content"]


def test_an_lm_negotiator_plays_either_role_and_its_text_goes_through_the_parser(engine, tiny):
    episodes = [engine.play(tasks()[0], LMNegotiator(tiny, "fixed-anger", SHORT), PersonaAgent("conceder")),
                engine.play(tasks()[0], PersonaAgent("conceder"), LMNegotiator(tiny, "fixed-anger", SHORT))]
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
    episodes = list(engine.run(tasks(n=4), LMNegotiator(smol, "fixed-neutral", SamplingParams(max_new_tokens=40)),
                               PersonaAgent()))
    assert {e.task.scenario.domain for e in episodes} == set(domain_ids())
    for episode in episodes:
        assert episode.outcome.ending is not Ending.ERROR
        focal = episode.turns_of(Role.FOCAL)
        assert all(u.text for u in focal)
    readable = [u for e in episodes for u in e.turns_of(Role.FOCAL) if u.offer_status == "ok"]
    assert len(readable) >= len(episodes)  # most domains' transcripts state offers the parser reads


@pytest.mark.slow
def test_smollm2_negotiates_against_itself(recognizer, smol):
    engine = Engine(recognizer, max_turns=8)
    model = LMNegotiator(smol, None, SamplingParams(max_new_tokens=40))
    episodes = list(engine.run(tasks("lm", n=4), model, model))
    for episode in episodes:
        assert episode.outcome.ending is not Ending.ERROR
        assert {u.role for u in episode.utterances} == {Role.FOCAL, Role.COUNTERPARTY}
        assert all(u.text for u in episode.utterances)
    assert any(u.offer_status == "ok" for e in episodes for u in e.utterances)
