"""docs/counterparty.md documents every registered persona with its exact parameters."""

import re
from pathlib import Path

from emoneg_bench.agents.personas import EmotionResponse, get_persona, persona_names

DOC = (Path(__file__).resolve().parents[1] / "docs" / "counterparty.md").read_text()


def table_rows():
    rows = {}
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] in persona_names():
            rows[cells[0]] = cells
    return rows


def test_there_are_at_least_eight_training_and_four_held_out_personas():
    assert len(persona_names(held_out=False)) >= 8
    assert len(persona_names(held_out=True)) >= 4
    assert not set(persona_names(held_out=False)) & set(persona_names(held_out=True))


def test_every_persona_is_documented_with_its_parameters():
    rows = table_rows()
    assert set(rows) == set(persona_names())
    for name, cells in rows.items():
        p = get_persona(name)
        lo, hi = (float(x) for x in cells[4].split("–"))
        assert cells[1] == ("held out" if p.held_out else "training")
        assert (float(cells[2]), float(cells[3])) == (p.concession_exponent, p.initial_concession)
        assert (lo, hi) == p.reservation
        assert [float(c) for c in cells[5:10]] == [p.deadline, p.power, p.trust, p.competitiveness, p.base_hazard]
        assert int(cells[10]) == p.dominance_tolerance


def test_every_emotion_response_knob_is_documented_with_its_default():
    for name, value in vars(EmotionResponse()).items():
        assert re.search(rf"\| `{name}` \| {value} \|", DOC), name
