"""Emotion taxonomies as data: GoEmotions-28, Ekman-7, Izard-10, mappings, families and the
uniform instruction template.

Every emotion renders through one template (adjective + affect clause + behaviour clause), so two
prompts differ only in the emotion — the emotion stays the only variable of an experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .errors import UnknownNameError


class Family(StrEnum):
    """Coarse groups the counterparty model reacts to (DESIGN.md section 2)."""

    DOMINANCE = "dominance"
    SUPPLICATION = "supplication"
    APPEASEMENT = "appeasement"
    AFFILIATION = "affiliation"
    COGNITIVE = "cognitive"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Emotion:
    """One emotion: its label, family and the three clauses of the instruction template."""

    name: str
    family: Family
    adjective: str
    affect: str
    behaviour: str


def _e(name: str, family: Family, adjective: str, affect: str, behaviour: str) -> Emotion:
    return Emotion(name, family, adjective, affect, behaviour)


D, S, A, F, C, N = (Family.DOMINANCE, Family.SUPPLICATION, Family.APPEASEMENT, Family.AFFILIATION,
                    Family.COGNITIVE, Family.NEUTRAL)

# GoEmotions index order (27 + neutral); the order is part of the dataset schema (ClassLabel ids).
_GOEMOTIONS: tuple[Emotion, ...] = (
    _e("admiration", F, "admiring", "you respect what the other side has done", "acknowledge their effort warmly before you state your position"),
    _e("amusement", F, "amused", "you find the situation a little funny", "keep a light, joking tone while you hold your number"),
    _e("anger", D, "angry", "you feel wronged and your patience is gone", "speak bluntly, insist on your terms and make clear that delay has a cost"),
    _e("annoyance", D, "annoyed", "you are irritated by how slowly this is going", "sound short and impatient and push to settle on your terms"),
    _e("approval", F, "approving", "you like the direction the talk is taking", "signal agreement with their reasoning while you keep your demand"),
    _e("caring", F, "caring", "you genuinely worry about the other side's wellbeing", "show concern for their situation and frame your offer as good for them"),
    _e("confusion", C, "confused", "you cannot make sense of their position", "ask them to explain and point out what does not add up"),
    _e("curiosity", C, "curious", "you want to understand what really drives them", "ask open questions about their constraints before you commit"),
    _e("desire", C, "eager", "you strongly want this deal to happen", "show how much you want an agreement and press for it now"),
    _e("disappointment", S, "disappointed", "you hoped for more from them and feel let down", "tell them their offer lets you down and ask them to do better"),
    _e("disapproval", D, "disapproving", "you think their position is unreasonable", "state plainly that their offer is not acceptable and why"),
    _e("disgust", D, "disgusted", "their proposal strikes you as offensive", "reject their offer with open distaste and restate your terms"),
    _e("embarrassment", A, "embarrassed", "you feel awkward about how things went", "admit the awkwardness and soften your request"),
    _e("excitement", F, "excited", "you are energised by the chance of a deal", "speak with enthusiasm and momentum toward closing"),
    _e("fear", S, "afraid", "you dread what happens if this fails", "voice your worry about the consequences and ask for their help"),
    _e("gratitude", F, "grateful", "you appreciate what they have offered so far", "thank them sincerely and then state what you still need"),
    _e("grief", S, "grieving", "you feel a heavy sense of loss about the situation", "speak quietly about what has been lost and ask for understanding"),
    _e("joy", F, "joyful", "you feel genuinely happy about the conversation", "sound cheerful and upbeat while you state your offer"),
    _e("love", F, "warm", "you feel deep warmth toward the people involved", "speak with affection and emphasise the relationship"),
    _e("nervousness", S, "nervous", "you are anxious and unsure this will work", "sound hesitant and ask for reassurance"),
    _e("optimism", F, "optimistic", "you believe a good outcome is within reach", "express confidence that you will find a solution together"),
    _e("pride", F, "proud", "you feel confident in your standing and record", "speak with assurance about your strengths and stand firm"),
    _e("realization", C, "reflective", "something has just become clear to you", "point out what you now understand and adjust your framing"),
    _e("relief", F, "relieved", "a worry has just been lifted", "let the tension go and move calmly toward agreement"),
    _e("remorse", A, "remorseful", "you feel guilty about your part in the problem", "apologise and take responsibility while making your offer"),
    _e("sadness", S, "sad", "you feel low about how things stand", "let your sadness show and ask them to meet you halfway"),
    _e("surprise", C, "surprised", "their move caught you off guard", "react to the unexpected and ask what changed"),
    _e("neutral", N, "calm", "you feel no particular emotion", "state your position plainly and factually"),
)

GOEMOTIONS: tuple[str, ...] = tuple(e.name for e in _GOEMOTIONS)
EMOTIONS: dict[str, Emotion] = {e.name: e for e in _GOEMOTIONS}
EMOTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(GOEMOTIONS)}
FAMILY_OF: dict[str, Family] = {e.name: e.family for e in _GOEMOTIONS}

EKMAN: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")
IZARD: tuple[str, ...] = ("interest", "joy", "surprise", "sadness", "anger", "disgust", "contempt", "fear",
                          "shame", "guilt")

# The GoEmotions authors' Ekman grouping, extended with neutral.
GOEMOTIONS_TO_EKMAN: dict[str, str] = {
    **dict.fromkeys(("anger", "annoyance", "disapproval"), "anger"),
    "disgust": "disgust",
    **dict.fromkeys(("fear", "nervousness"), "fear"),
    **dict.fromkeys(("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
                     "pride", "admiration", "desire", "caring"), "joy"),
    **dict.fromkeys(("sadness", "disappointment", "embarrassment", "grief", "remorse"), "sadness"),
    **dict.fromkeys(("surprise", "realization", "confusion", "curiosity"), "surprise"),
    "neutral": "neutral",
}

# Izard's differential-emotions categories; neutral has no Izard counterpart (None).
GOEMOTIONS_TO_IZARD: dict[str, str | None] = {
    **dict.fromkeys(("curiosity", "desire", "confusion", "realization"), "interest"),
    **dict.fromkeys(("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
                     "pride", "admiration", "caring"), "joy"),
    "surprise": "surprise",
    **dict.fromkeys(("sadness", "disappointment", "grief"), "sadness"),
    **dict.fromkeys(("anger", "annoyance"), "anger"),
    "disgust": "disgust",
    "disapproval": "contempt",
    **dict.fromkeys(("fear", "nervousness"), "fear"),
    "embarrassment": "shame",
    "remorse": "guilt",
    "neutral": None,
}

# The most typical GoEmotions label for each coarse category (used to express a coarse emotion).
EKMAN_TO_GOEMOTIONS: dict[str, str] = {name: name for name in EKMAN}
IZARD_TO_GOEMOTIONS: dict[str, str] = {
    "interest": "curiosity", "joy": "joy", "surprise": "surprise", "sadness": "sadness", "anger": "anger",
    "disgust": "disgust", "contempt": "disapproval", "fear": "fear", "shame": "embarrassment", "guilt": "remorse",
}

TAXONOMIES: dict[str, tuple[str, ...]] = {"goemotions": GOEMOTIONS, "ekman": EKMAN, "izard": IZARD}

INSTRUCTION_TEMPLATE = (
    "In this message, be {adjective}: {affect}. Let it show in how you write: {behaviour}."
)


def get_emotion(name: str) -> Emotion:
    """Look an emotion up by its GoEmotions name, or raise an error listing the valid names."""
    try:
        return EMOTIONS[name]
    except KeyError:
        raise UnknownNameError("emotion", name, GOEMOTIONS) from None


def emotion_instruction(name: str) -> str:
    """The uniform instruction for expressing ``name``; same shape for every emotion."""
    e = get_emotion(name)
    return INSTRUCTION_TEMPLATE.format(adjective=e.adjective, affect=e.affect, behaviour=e.behaviour)


def map_emotion(name: str, source: str, target: str) -> str | None:
    """Map a label between taxonomies (``goemotions``, ``ekman``, ``izard``); None when no counterpart."""
    for taxonomy in (source, target):
        if taxonomy not in TAXONOMIES:
            raise UnknownNameError("taxonomy", taxonomy, TAXONOMIES)
    if name not in TAXONOMIES[source]:
        raise UnknownNameError(f"{source} emotion", name, TAXONOMIES[source])
    if source == target:
        return name
    fine = {"goemotions": name, "ekman": EKMAN_TO_GOEMOTIONS.get(name), "izard": IZARD_TO_GOEMOTIONS.get(name)}[source]
    if target == "goemotions":
        return fine
    return (GOEMOTIONS_TO_EKMAN if target == "ekman" else GOEMOTIONS_TO_IZARD)[fine]


def emotions_in_family(family: Family | str) -> tuple[str, ...]:
    """GoEmotions labels of one family, in index order."""
    family = Family(family)
    return tuple(e.name for e in _GOEMOTIONS if e.family is family)
