import pytest

from emoneg_bench import emotions
from emoneg_bench.errors import UnknownNameError

GOEMOTIONS_ORDER = (
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment disapproval "
    "disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride realization relief "
    "remorse sadness surprise neutral"
).split()


def test_goemotions_has_the_28_labels_in_index_order():
    assert list(emotions.GOEMOTIONS) == GOEMOTIONS_ORDER
    assert emotions.EMOTION_INDEX["neutral"] == 27


def test_families_match_the_design():
    assert emotions.emotions_in_family("dominance") == ("anger", "annoyance", "disapproval", "disgust")
    assert set(emotions.emotions_in_family("supplication")) == {"sadness", "disappointment", "grief", "nervousness", "fear"}
    assert emotions.emotions_in_family("appeasement") == ("embarrassment", "remorse")
    assert set(emotions.emotions_in_family("cognitive")) == {"curiosity", "confusion", "realization", "surprise", "desire"}
    assert len(emotions.emotions_in_family("affiliation")) == 11
    assert emotions.emotions_in_family("neutral") == ("neutral",)


def test_every_goemotion_maps_to_ekman_and_izard():
    for name in emotions.GOEMOTIONS:
        assert emotions.map_emotion(name, "goemotions", "ekman") in emotions.EKMAN
        izard = emotions.map_emotion(name, "goemotions", "izard")
        assert izard in emotions.IZARD or (name == "neutral" and izard is None)


def test_coarse_labels_map_back_to_a_goemotion_of_the_same_coarse_class():
    for name in emotions.IZARD:
        fine = emotions.map_emotion(name, "izard", "goemotions")
        assert emotions.map_emotion(fine, "goemotions", "izard") == name
    for name in emotions.EKMAN:
        fine = emotions.map_emotion(name, "ekman", "goemotions")
        assert emotions.map_emotion(fine, "goemotions", "ekman") == name
    assert emotions.map_emotion("guilt", "izard", "ekman") == "sadness"


def test_instructions_share_one_template_and_differ_only_in_the_emotion():
    anger, joy = emotions.emotion_instruction("anger"), emotions.emotion_instruction("joy")
    assert anger.startswith("In this message, be angry: ")
    assert joy.startswith("In this message, be joyful: ")
    for name in emotions.GOEMOTIONS:
        text = emotions.emotion_instruction(name)
        assert text.count(":") == 2 and text.endswith(".")
        e = emotions.EMOTIONS[name]
        assert emotions.INSTRUCTION_TEMPLATE.format(adjective=e.adjective, affect=e.affect, behaviour=e.behaviour) == text


def test_unknown_emotion_error_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="unknown emotion 'rage'; expected one of: admiration"):
        emotions.get_emotion("rage")
    with pytest.raises(UnknownNameError, match="unknown taxonomy"):
        emotions.map_emotion("anger", "goemotions", "plutchik")
