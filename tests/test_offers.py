"""The offer parser reads the offered quantity in the domain's unit, and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emoneg_bench.perception.offers import OfferStatus, ParsedOffer, format_offer, parse_offer
from emoneg_bench.units import Unit

DAYS, MINUTES, BEDTIME = Unit.DAYS, Unit.MINUTES, Unit.BEDTIME

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_in_words(n: int) -> str:
    """0..99 in English words: 21 → 'twenty-one'."""
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens - 2] + (f"-{_ONES[ones]}" if ones else "")


def value_of(text: str, unit: Unit) -> float | None:
    offer = parse_offer(text, unit)
    assert offer.status in (OfferStatus.OK, OfferStatus.NO_OFFER, OfferStatus.AMBIGUOUS), offer
    return offer.value


# ------------------------------------------------------------------------------------ examples
@pytest.mark.parametrize(("text", "days"), [
    ("Honestly, I can agree to 3 weeks.", 21),
    ("14 days", 14), ("14days", 14), ("14 Days", 14), ("14-day", 14), ("fourteen days", 14),
    ("2 weeks", 14), ("two weeks", 14), ("a week", 7), ("a fortnight", 14),
    ("one month", 30), ("1.5 months", 45), ("half a month", 15), ("a year", 365),
    ("twenty-one days", 21), ("twenty one days", 21), ("a couple of weeks", 14), ("a couple days", 2),
    ("10 business days", 10), ("15 working days", 15),
    ("3 weeks and 2 days", 23), ("two weeks, three days", 17), ("a week and a half", 10.5),
    ("one and a half weeks", 10.5), ("I can pay within 1,000 days", 1000), ("THIRTY DAYS", 30),
])
def test_reads_days(text, days):
    assert value_of(text, DAYS) == days


@pytest.mark.parametrize(("text", "minutes"), [
    ("90 minutes", 90), ("90 mins", 90), ("90 min", 90), ("90m", 90), ("ninety minutes", 90),
    ("1.5 hours", 90), ("an hour and a half", 90), ("one and a half hours", 90), ("2 hrs", 120),
    ("2 hours 15 minutes", 135), ("2 hours and 15 minutes", 135), ("an hour, 15 minutes", 75),
    ("half an hour", 30), ("a half hour", 30), ("quarter of an hour", 15), ("three quarters of an hour", 45),
    ("1h30", 90), ("1h 30m", 90), ("1h30m", 90), ("2h", 120), ("We can be there in 45 mins.", 45),
])
def test_reads_minutes(text, minutes):
    assert value_of(text, MINUTES) == minutes


@pytest.mark.parametrize(("text", "minutes_past_9pm"), [
    ("11:30 PM", 150), ("11:30pm", 150), ("11 pm", 120), ("11PM", 120), ("11.30 p.m.", 150),
    ("midnight", 180), ("12:45 AM", 225), ("1:15 am", 255), ("6 PM", -180), ("11:59 AM", 899),
    ("23:30", 150), ("00:30", 210), ("21:00", 0), ("10:30", 90), ("12:30", 210), ("11 o'clock", 120),
    ("eleven pm", 120), ("half past eleven", 150), ("quarter to one", 225), ("ten past eleven", 130),
    ("twenty to twelve", 160), ("90 minutes past 9 PM", 90), ("an hour before midnight", 120),
    ("30 minutes after 10:30 pm", 120), ("Lights out at 10:45 PM, final answer.", 105),
])
def test_reads_bedtimes(text, minutes_past_9pm):
    assert value_of(text, BEDTIME) == minutes_past_9pm


@pytest.mark.parametrize(("text", "unit"), [
    ("I owe $15,700 and can pay 20% now.", DAYS),
    ("The balance is 15,700 USD.", DAYS),
    ("The invoice from 2025-03-29 is still open.", DAYS),
    ("We need 40% more supplies, $2,500 worth.", MINUTES),
    ("In 2025 we paid 3,000 dollars.", BEDTIME),
])
def test_ignores_money_percentages_and_dates(text, unit):
    assert parse_offer(text, unit) == ParsedOffer(None, OfferStatus.NO_OFFER)


@pytest.mark.parametrize(("text", "unit"), [
    ("I can do 30.", DAYS), ("How about 45?", MINUTES), ("How about 11?", BEDTIME),
])
def test_bare_number_is_not_an_offer(text, unit):
    assert parse_offer(text, unit).status is OfferStatus.NO_OFFER


@pytest.mark.parametrize("text", ["a few days", "several weeks", "twice a week", "$15 a day", "once a month"])
def test_vague_amounts_and_rates_are_not_offers(text):
    assert parse_offer(text, DAYS).status is OfferStatus.NO_OFFER


def test_ignored_quantities_leave_the_real_offer():
    assert value_of("On the $15,700 balance (20% down) I can do 30 days.", DAYS) == 30


def test_range_words_are_not_read_as_a_countdown():
    assert value_of("from ten to eleven pm", BEDTIME) == 120
    assert value_of("I sleep two to three hours", BEDTIME) is None


@pytest.mark.parametrize(("text", "unit", "expected"), [
    ("You asked for 30 days, but I offer 20 days.", DAYS, 20),
    ("It's been 45 days overdue; I propose 14 days.", DAYS, 14),
    ("Your offer of 30 days is too long. Let's say 25 days.", DAYS, 25),
    ("I can't accept 30 days, but I can do 20 days.", DAYS, 20),
    ("Would you accept 20 days instead of 30 days?", DAYS, 20),
    ("I propose 14 days, since 30 days is far too long.", DAYS, 14),
    ("They said 2 hours. We can commit to 90 minutes.", MINUTES, 90),
    ("How about 11 PM? You wanted 1 a.m.", BEDTIME, 120),
])
def test_offer_cue_picks_the_offer(text, unit, expected):
    assert value_of(text, unit) == expected


def test_same_value_said_twice_is_one_offer():
    assert value_of("14 days, yes, two weeks.", DAYS) == 14


def test_weak_cue_decides_when_no_strong_cue_does():
    assert value_of("After 30 days of waiting, please deliver within 2 hours.", MINUTES) == 120


def test_strong_cue_outranks_weak_cue():
    assert value_of("We must be done by 30 days; I propose 20 days.", DAYS) == 20


def test_different_quantities_without_cue_are_ambiguous():
    assert parse_offer("20 days or 30 days", DAYS) == ParsedOffer(None, OfferStatus.AMBIGUOUS)


def test_two_cued_values_are_ambiguous():
    assert parse_offer("I offer 20 days. I could also accept 25 days.", DAYS).status is OfferStatus.AMBIGUOUS


def test_cue_does_not_reach_into_the_next_sentence():
    assert parse_offer("I propose a fair deal. 20 days or 30 days.", DAYS).status is OfferStatus.AMBIGUOUS


def test_out_of_range_keeps_the_value():
    offer = parse_offer("I can wait 3 years.", DAYS, bounds=(0, 730))
    assert (offer.value, offer.status) == (1095, OfferStatus.OUT_OF_RANGE)


def test_bounds_are_inclusive():
    assert parse_offer("730 days", DAYS, bounds=(0, 730)).status is OfferStatus.OK
    assert parse_offer("6 PM", BEDTIME, bounds=(-180, 720)).status is OfferStatus.OK


def test_empty_text_has_no_offer():
    assert parse_offer("", DAYS) == ParsedOffer(None, OfferStatus.NO_OFFER)


def test_span_covers_the_quantity():
    text = "Honestly, I can agree to 3 weeks and 2 days."
    start, end = parse_offer(text, DAYS).span
    assert text[start:end] == "3 weeks and 2 days"


@pytest.mark.parametrize(("value", "unit", "text"), [
    (14, DAYS, "14 days"), (1, DAYS, "1 day"), (0, DAYS, "0 days"), (90, MINUTES, "90 minutes"),
    (1, MINUTES, "1 minute"), (13.6, DAYS, "14 days"), (150, BEDTIME, "11:30 PM"), (-180, BEDTIME, "6:00 PM"),
    (180, BEDTIME, "12:00 AM"),
])
def test_format_offer(value, unit, text):
    assert format_offer(value, unit) == text


# ------------------------------------------------------------------------------------ properties
_RANGES = {DAYS: (0, 730), MINUTES: (0, 1440), BEDTIME: (-180, 899)}
_SAFE_WORDS = ("honestly", "I", "think", "that", "works", "for", "me", "please", "consider", "the", "plan",
               "really", "okay", "friend", "we", "should", "be", "fine", "with", "this", "so", ",", "!", "?")
_filler = st.lists(st.sampled_from(_SAFE_WORDS), max_size=12).map(" ".join)
_unit_and_value = st.sampled_from(list(_RANGES)).flatmap(
    lambda unit: st.tuples(st.just(unit), st.integers(*_RANGES[unit])))


@given(_unit_and_value)
def test_format_then_parse_round_trips(unit_and_value):
    unit, value = unit_and_value
    assert parse_offer(format_offer(value, unit), unit).value == value


@given(_unit_and_value, _filler, _filler)
def test_round_trip_survives_filler_text(unit_and_value, before, after):
    unit, value = unit_and_value
    assert parse_offer(f"{before} {format_offer(value, unit)} {after}", unit).value == value


@given(st.integers(0, 99), st.sampled_from([(DAYS, "days"), (MINUTES, "minutes")]))
def test_number_words_round_trip(n, unit_and_name):
    unit, name = unit_and_name
    assert parse_offer(f"{number_in_words(n)} {name}", unit).value == n


@given(st.integers(0, 365), st.integers(0, 365))
def test_offer_cue_wins_over_the_quantity_it_answers(asked, offered):
    text = f"You asked for {asked} days, but I offer {offered} days."
    assert parse_offer(text, DAYS).value == offered


_FRAGMENTS = ("14", "11", "30", "1", "0", ":", ".", ",", "-", "$", "%", " ", "a", "an", "half", "past", "to",
              "quarter", "twenty", "one", "days", "week", "hour", "minutes", "h", "m", "pm", "a.m.", "midnight",
              "and", "offer", "you", "can't", "by", "from", "\n", "é", "２")
_grammar_soup = st.lists(st.sampled_from(_FRAGMENTS), max_size=25).map("".join)
_any_text = st.one_of(st.text(), _grammar_soup, _grammar_soup.map(lambda s: s.replace("", " ").strip()))
_bounds = st.one_of(st.none(), st.tuples(st.integers(-200, 200), st.integers(0, 1000)))


@settings(max_examples=300)
@given(_any_text, st.sampled_from(list(Unit)), _bounds)
def test_never_raises_and_reports_a_consistent_status(text, unit, bounds):
    offer = parse_offer(text, unit, bounds)
    assert offer.status in set(OfferStatus) - {OfferStatus.STRUCTURED}
    assert (offer.value is None) == (offer.status not in (OfferStatus.OK, OfferStatus.OUT_OF_RANGE))
    assert (offer.span is None) == (offer.value is None)
    if offer.span is not None:
        assert 0 <= offer.span[0] < offer.span[1] <= len(text)
    if offer.value is not None and bounds is not None:
        inside = bounds[0] <= offer.value <= bounds[1]
        assert (offer.status is OfferStatus.OK) == inside
    assert parse_offer(text, unit, bounds) == offer
