"""How a language-model negotiator sees a negotiation: one system message (role, scenario and, when
emotion-conditioned, the uniform emotion instruction) and one user message (the transcript so far).

The SFT config of a release is written with exactly these messages, so a model trained on a release
is prompted the same way when it plays.
"""

from __future__ import annotations

from collections.abc import Sequence

from .domains.base import Domain, Scenario
from .emotions import emotion_instruction
from .negotiation import Role, Utterance
from .perception.offers import format_offer
from .units import Unit

_OFFER_HINT = {Unit.DAYS: "a number of days", Unit.MINUTES: "a number of minutes", Unit.BEDTIME: "a clock time"}


def negotiator_messages(domain: Domain, role: Role, scenario: Scenario, history: Sequence[Utterance],
                        emotion: str | None) -> list[dict[str, str]]:
    system = domain.system_prompt(str(role), scenario)
    if emotion is not None:
        system = f"{system} {emotion_instruction(emotion)}"
    names = {Role.FOCAL: domain.focal_role, Role.COUNTERPARTY: domain.counterparty_role}
    own_anchor = scenario.focal_anchor if role is Role.FOCAL else scenario.counterparty_anchor
    # Small models follow a concrete example of the format far more reliably than a description of it
    # (SmolLM2-135M: 7 of 12 opening offers readable with the example, 0 of 12 without).
    ask = (f"in one or two sentences, stating {_OFFER_HINT[domain.unit]} "
           f"(like \"I propose {format_offer(own_anchor, domain.unit)}.\").")
    if not history:
        user = f"You are the {names[role]}. You speak first. Make your opening offer {ask}"
    else:
        transcript = "\n".join(f"{names[u.role].capitalize()}: {u.text}" for u in history)
        user = (f"The conversation so far:\n{transcript}\n\nYou are the {names[role]}. Reply to the "
                f"{names[role.other]} with your next offer {ask}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
