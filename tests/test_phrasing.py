"""The phrasing bank: its shape, its hygiene (no stray quantities) and message composition."""

from __future__ import annotations

import random
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoneg_bench.agents import phrasing
from emoneg_bench.domains import domain_ids, generate_scenarios, get_domain
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.errors import InputError, UnknownNameError
from emoneg_bench.perception.offers import OfferStatus, format_offer, parse_offer

BANK = phrasing.bank()
ROLES = ("focal", "counterparty")
COMBINATIONS = [(d, r, e) for d in domain_ids() for r in ROLES for e in GOEMOTIONS]
OFFER_TEXT = {"debt": "14 days", "disaster": "90 minutes", "hospital": "45 days", "student": "11:30 PM"}
FORBIDDEN_SLOTS = {"focal_anchor", "counterparty_anchor", "days_overdue", "focal_clock", "counterparty_clock",
                   "time_reduction_if_junior_days"}
NUMBER_WORDS = re.compile(r"\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|"
                          r"thirty|forty|fifty|hundred|dozen|half|quarter|couple|once|twice)\b", re.I)
UNIT_WORDS = re.compile(r"\b(?i:days?|weeks?|fortnight|months?|years?|hours?|minutes?|midnight|noon|o'clock)\b"
                        r"|\b(AM|PM|[ap]\.m\.)")  # "I am" is fine, "AM" is a clock
DURATION = re.compile(r"\d[\d,.]*\s*-?\s*(days?|weeks?|months?|years?|hours?|minutes?)\b", re.I)
CLOCK = re.compile(r"\b\d{1,2}(:\d{2})?\s*([ap]\.?m\.?)\b|\b\d{1,2}:\d{2}\b", re.I)


def _slot_names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _without_slots(template: str) -> str:
    return re.sub(r"\{[^}]*\}", "", template)


def _all_clauses() -> list[str]:
    return [c for e in GOEMOTIONS for c in phrasing.emotion_clauses(e)]


def _frames() -> list[str]:
    return [before + "{offer}" + after for e in GOEMOTIONS for before, after in BANK.frames[e]]


def test_every_emotion_has_16_clauses_5_frames_and_8_independent_sentences():
    for emotion in GOEMOTIONS:
        assert len(phrasing.emotion_clauses(emotion)) == 16
        assert len(BANK.frames[emotion]) == 5
    eval_counts = {e: sum(1 for _, label in phrasing.independent_eval_set() if label == e) for e in GOEMOTIONS}
    assert eval_counts == dict.fromkeys(GOEMOTIONS, 8)


def test_bank_covers_every_registered_domain_and_both_roles():
    assert set(BANK.domains) == set(domain_ids())
    for domain in domain_ids():
        for role in ROLES:
            assert len(BANK.offer_templates[domain, role]) == 14
            assert len(BANK.justifications[domain, role]) == 12
    for role in ROLES:
        assert len(BANK.accept[role]) == 8
        assert len(BANK.walkaway[role]) == 8


def test_clauses_frames_justifications_and_eval_sentences_contain_no_digits():
    texts = (_all_clauses() + _frames() + [t for t, _ in phrasing.independent_eval_set()]
             + [_without_slots(j) for js in BANK.justifications.values() for j in js]
             + [w for ws in BANK.walkaway.values() for w in ws])
    offenders = [t for t in texts if re.search(r"\d", t)]
    assert offenders == []


def test_clauses_and_frames_name_no_number_or_time_unit():
    offenders = [t for t in _all_clauses() + _frames() if NUMBER_WORDS.search(t) or UNIT_WORDS.search(t)]
    assert offenders == []


def test_clauses_have_between_4_and_25_words():
    lengths = [len(c.split()) for c in _all_clauses()]
    assert min(lengths) >= 4
    assert max(lengths) <= 25


def test_no_two_emotions_share_a_clause():
    clauses = _all_clauses()
    assert len(clauses) == 28 * 16
    assert len(set(clauses)) == len(clauses)


def test_independent_eval_sentences_never_appear_among_the_clauses():
    assert not {t for t, _ in phrasing.independent_eval_set()} & set(_all_clauses())


def test_train_and_held_out_splits_are_disjoint_and_cover_all_16():
    for emotion in GOEMOTIONS:
        every = phrasing.emotion_clauses(emotion)
        train = phrasing.emotion_clauses(emotion, split="train")
        held_out = phrasing.emotion_clauses(emotion, split="held_out")
        assert len(train) == 12 and len(held_out) == phrasing.HELD_OUT_CLAUSES == 4
        assert not set(train) & set(held_out)
        assert train + held_out == every


def test_frames_offer_templates_and_acceptances_hold_exactly_one_offer_slot():
    templates = _frames() + [b + "{offer}" + a for ts in BANK.offer_templates.values() for b, a in ts]
    templates += [b + "{offer}" + a for ts in BANK.accept.values() for b, a in ts]
    assert all(t.count("{offer}") == 1 for t in templates)
    assert len(templates) == 28 * 5 + 4 * 2 * 14 + 2 * 8


@pytest.mark.parametrize("domain", domain_ids())
def test_every_justification_formats_with_real_scenario_slots_and_states_no_offer_quantity(domain):
    scenarios = generate_scenarios(domain, 5, seed=0)
    available = set(scenarios[0].slots())
    for role in ROLES:
        for template in BANK.justifications[domain, role]:
            names = _slot_names(template)
            assert names <= available - FORBIDDEN_SLOTS, (template, names - available, names & FORBIDDEN_SLOTS)
            assert "offer" not in names
            for scenario in scenarios:
                text = template.format(**scenario.slots())
                assert not DURATION.search(text), text
                assert not CLOCK.search(text), text


@pytest.mark.parametrize(("domain", "role", "emotion"), COMBINATIONS)
def test_surface_form_count_is_in_the_thousands_for_every_domain_role_and_emotion(domain, role, emotion):
    # 16 clauses × 19 offer sentences × (no justification + 12 justifications × 2 positions)
    assert phrasing.surface_form_count(domain, role, emotion) == 16 * 19 * 25 >= 300


def test_surface_form_count_bounds_what_compose_message_actually_writes():
    slots = generate_scenarios("debt", 1, seed=0)[0].slots()
    rng = random.Random(0)
    seen = {phrasing.compose_message("debt", "focal", "anger", "14 days", slots, rng) for _ in range(60_000)}
    count = phrasing.surface_form_count("debt", "focal", "anger")
    assert 0.9 * count <= len(seen) <= count


def test_compose_message_is_deterministic_for_a_seed():
    slots = generate_scenarios("hospital", 1, seed=0)[0].slots()
    first = [phrasing.compose_message("hospital", "focal", "fear", "45 days", slots, random.Random(11))
             for _ in range(3)]
    assert first[0] == first[1] == first[2]


def test_compose_message_varies_across_seeds():
    slots = generate_scenarios("student", 1, seed=0)[0].slots()
    messages = {phrasing.compose_message("student", "counterparty", "annoyance", "11:30 PM", slots,
                                         random.Random(seed)) for seed in range(200)}
    assert len(messages) >= 50


def test_compose_message_opens_with_a_clause_of_the_requested_split():
    slots = generate_scenarios("disaster", 1, seed=0)[0].slots()
    rng = random.Random(3)
    for split in ("train", "held_out"):
        clauses = phrasing.emotion_clauses("grief", split=split)
        for _ in range(50):
            message = phrasing.compose_message("disaster", "counterparty", "grief", "90 minutes", slots, rng,
                                               clauses=split)
            assert message.startswith(clauses)


@settings(max_examples=300, deadline=None)
@given(combination=st.sampled_from(COMBINATIONS), seed=st.integers(0, 2**32 - 1))
def test_composed_message_contains_the_offer_text_exactly_once(combination, seed):
    domain, role, emotion = combination
    slots = generate_scenarios(domain, 3, seed=0)[seed % 3].slots()
    message = phrasing.compose_message(domain, role, emotion, OFFER_TEXT[domain], slots, random.Random(seed))
    assert message.count(OFFER_TEXT[domain]) == 1
    assert "{" not in message and "}" not in message


@pytest.mark.parametrize("domain", domain_ids())
def test_offer_parser_reads_back_exactly_the_composed_offer(domain):
    unit, rng = get_domain(domain).unit, random.Random(domain)
    scenarios = generate_scenarios(domain, 5, seed=0)
    for role in ROLES:
        for emotion in GOEMOTIONS:
            for _ in range(20):
                scenario = rng.choice(scenarios)
                low, high = sorted((scenario.focal_anchor, scenario.counterparty_anchor))
                value = rng.randint(low, high)
                message = phrasing.compose_message(domain, role, emotion, format_offer(value, unit),
                                                   scenario.slots(), rng)
                parsed = parse_offer(message, unit)
                assert (parsed.status, parsed.value) == (OfferStatus.OK, value), message


@pytest.mark.parametrize("role", ROLES)
def test_acceptance_states_the_standing_offer_once_and_walkaway_states_none(role):
    rng = random.Random(5)
    for _ in range(40):
        accept = phrasing.with_emotion("relief", phrasing.accept_message(role, "11:30 PM", rng), rng)
        assert accept.count("11:30 PM") == 1
        assert parse_offer(accept, get_domain("student").unit).value == 150
        walkaway = phrasing.walkaway_message(role, rng)
        assert parse_offer(walkaway, get_domain("debt").unit).status is OfferStatus.NO_OFFER


@pytest.mark.parametrize(("arguments", "kind"), [
    (("court", "focal", "anger"), "domain"),
    (("debt", "mediator", "anger"), "role"),
    (("debt", "focal", "rage"), "emotion"),
])
def test_unknown_names_raise_an_error_listing_the_known_ones(arguments, kind):
    with pytest.raises(UnknownNameError) as error:
        phrasing.compose_message(*arguments, "14 days", {}, random.Random(0))
    assert error.value.kind == kind
    with pytest.raises(UnknownNameError):
        phrasing.surface_form_count(*arguments)


def test_unknown_clause_split_and_role_raise_unknown_name_error():
    with pytest.raises(UnknownNameError, match="clause split"):
        phrasing.emotion_clauses("joy", split="test")
    with pytest.raises(UnknownNameError, match="role"):
        phrasing.accept_message("judge", "14 days", random.Random(0))
    with pytest.raises(UnknownNameError, match="role"):
        phrasing.walkaway_message("judge", random.Random(0))


def test_bank_with_a_missing_offer_slot_is_rejected_naming_the_field():
    import json
    from importlib.resources import files

    raw = json.loads(files("emoneg_bench").joinpath("data", "phrases.json").read_text(encoding="utf-8"))
    raw["emotion_offer_frames"]["anger"][0] = "Not a bit more."
    with pytest.raises(InputError, match=r"emotion_offer_frames\.anger"):
        phrasing.parse_bank(raw)
