"""The sampled persona population: members named by a key, parameters a pure function of the name, inside the
box the training personas span; corpora can mix them in (``corpus.sampled``) without touching releases that
do not."""

import dataclasses

import pytest

from builders.config import load_config
from builders.plan import all_tasks
from emoneg_bench.agents.personas import (
    POPULATION_BOX,
    get_persona,
    is_sampled,
    persona_names,
    sampled_persona_name,
)
from emoneg_bench.errors import EmoNegError


def test_a_member_is_a_pure_function_of_its_name_and_lies_in_the_training_box():
    names = [sampled_persona_name("test", i) for i in range(200)]
    assert len(set(names)) == 200 and all(is_sampled(n) for n in names)
    assert sampled_persona_name("test", 7) == names[7]
    members = [get_persona(n) for n in names]
    assert get_persona(names[3]) == members[3] and not members[3].held_out
    for p in members:
        for knob, (lo, hi) in POPULATION_BOX.items():
            if knob == "reservation_low":
                value = p.reservation[0]
            elif knob == "reservation_width":
                value = p.reservation[1] - p.reservation[0]
            else:
                value = getattr(p, knob)
            assert lo - 1e-4 <= value <= hi + 1e-4, (p.name, knob, value)
    assert {p.dominance_tolerance for p in members} == {2, 3, 4, 5}
    # the box is the training personas' span, and it does not reach into what only held-out personas have
    training = [get_persona(n) for n in persona_names(held_out=False)]
    for knob in ("power", "trust", "base_hazard", "concession_exponent"):
        assert POPULATION_BOX[knob] == (min(getattr(p, knob) for p in training),
                                        max(getattr(p, knob) for p in training))


@pytest.mark.parametrize("name", ["sampled-xyz", "sampled-0000000g", "sampled-123456789"])
def test_a_malformed_member_name_is_an_unknown_persona(name):
    with pytest.raises(EmoNegError, match="persona"):
        get_persona(name)


def test_a_corpus_mixes_in_fresh_members_only_when_asked(tmp_path):
    source = open("builders/configs/emoneg-v1.yaml").read()
    plain = load_config("builders/configs/emoneg-v1.yaml", "small")
    assert "corpus_sampled" not in plain.to_dict()  # releases without the option keep their manifest bytes
    assert not any(is_sampled(t.persona) for tasks in all_tasks(plain).values() for t in tasks)

    path = tmp_path / "mixed.yaml"
    path.write_text(source.replace("  personas: training", "  personas: training\n  sampled: 8", 1))
    mixed = load_config(path, "small")
    assert mixed.corpus_sampled == 8 and mixed.to_dict()["corpus_sampled"] == 8
    tasks = all_tasks(mixed)
    for split in ("train", "validation"):
        sampled = [t.persona for t in tasks[split] if is_sampled(t.persona)]
        assert len(sampled) == pytest.approx(len(tasks[split]) / 2, abs=len(set(t.scenario.domain for t in tasks[split])) * 8)
        assert len(set(sampled)) == len(sampled)  # a fresh member every time
    assert not set(t.persona for t in tasks["train"]) & set(t.persona for t in tasks["validation"]) - set(
        persona_names())
    for split in ("test", "test_unseen_counterparty"):  # evaluation tasks never change
        assert [dataclasses.astuple(t)[1:] for t in tasks[split]] == [dataclasses.astuple(t)[1:]
                                                                      for t in all_tasks(plain)[split]]

    path.write_text(source.replace("  personas: training", "  personas: training\n  sampled: -1", 1))
    with pytest.raises(EmoNegError, match="corpus.sampled"):
        load_config(path, "small")
