"""The baseline policies by name (DESIGN.md section 8): which emotion to show (none, random, fixed, the
IQL selector) composed with how to say it (the base SLM, a LoRA adapter, or the builtin teacher).

``make_policy(name, runs)`` turns a name and the trained artefacts into an engine ``Agent`` plus the
provenance recorded next to every evaluated episode (model and adapter hashes, the selector's hash).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emoneg_bench.agents.teacher import EmotionSchedule, TeacherAgent, UniformSchedule
from emoneg_bench.backends.base import SamplingParams
from emoneg_bench.emotions import GOEMOTIONS
from emoneg_bench.engine import Agent
from emoneg_bench.errors import InputError, UnknownNameError
from emoneg_bench.hashing import sha256_file, weights_sha256
from emoneg_bench.protocol import DEFAULT_PROTOCOL
from emoneg_bench.registry import Registry

from .training import ADAPTER

LAYOUT = (("iql", "iql"), ("sft", "sft"), ("jpo", "jpo"), ("emotion_free", "emotion-free-sft"), ("bc", "bc-top"),
          ("best_fixed", "best-fixed"))


@dataclass(frozen=True)
class Runs:
    """Where the trained artefacts are (any may be missing; a policy that needs one says so)."""

    iql: Path | None = None
    sft: Path | None = None
    jpo: Path | None = None
    emotion_free: Path | None = None
    bc: Path | None = None  # a bc-top run (`emoneg train bc`)
    best_fixed: Path | None = None  # a best-fixed run (`emoneg train best-fixed`)
    model: str = "smollm2"  # the SLM every SLM policy expresses with
    llm: str | None = None  # the model spec of vanilla-llm
    protocol: str = DEFAULT_PROTOCOL  # how the language-model policies state their moves

    @classmethod
    def in_folder(cls, folder: str | Path, **overrides) -> Runs:
        """The standard layout of ``emoneg reproduce``: FOLDER/{iql,sft,jpo,emotion-free-sft,bc-top,best-fixed}."""
        folder = Path(folder)
        found = {key: folder / name for key, name in LAYOUT if (folder / name).is_dir()}
        return cls(**(found | {k: v for k, v in overrides.items() if v is not None}))


@dataclass(frozen=True)
class Policy:
    name: str
    agent: Agent
    provenance: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyKind:
    description: str
    build: Callable[[str, Runs, SamplingParams], Policy]


POLICIES: Registry[PolicyKind] = Registry("policy")


def _need(runs: Runs, attribute: str, policy: str, how: str) -> Path:
    path = getattr(runs, attribute)
    if path is None or not Path(path).is_dir():
        raise InputError(f"policy {policy!r} needs a trained {attribute.replace('_', '-')} run (--{attribute.replace('_', '-')} "
                         f"DIR); train one with `{how}`")
    return Path(path)


def _selector(runs: Runs, policy: str, kind: str = "iql") -> tuple[EmotionSchedule, str]:
    """The trained selector of ``kind`` (``iql`` or ``bc``) and its digest: the weights' sha256, with the
    extraction appended (``…@T``, ``…@T+emotion>margin`` with a fallback) since the same weights extracted
    differently are another policy."""
    from .selector import BCSelector, IQLSelector

    folder = _need(runs, kind, policy, f"emoneg train {kind}")
    selector = (IQLSelector if kind == "iql" else BCSelector).load(folder)
    return selector, f"{weights_sha256(folder)}@{selector.extraction_tag}"


def _best_fixed(runs: Runs, policy: str, kind: str) -> tuple[EmotionSchedule, str]:
    from .comparators import CHOICES, load_choices, schedule

    folder = _need(runs, "best_fixed", policy, "emoneg train best-fixed")
    return schedule(load_choices(folder), kind), sha256_file(folder / CHOICES)


def _lm(policy: str, runs: Runs, params: SamplingParams, schedule: EmotionSchedule | None,
        adapter: Path | None = None, extra: dict | None = None, spec: str | None = None) -> Policy:
    """``schedule``'s emotions spoken by the model ``spec`` (default the runs' SLM), with ``adapter``."""
    from emoneg_bench.agents.lm import LMNegotiator
    from emoneg_bench.backends import load_backend

    spec, protocol = spec or runs.model, runs.protocol
    backend = load_backend(spec + (f"+adapter={adapter}" if adapter is not None else ""))
    provenance = {"model": spec, "model_sha256": getattr(backend, "model_sha256", None),
                  "adapter_sha256": getattr(backend, "adapter_sha256", None), "protocol": protocol,
                  "backend": backend.kind, **(extra or {})}
    return Policy(policy, LMNegotiator(backend, schedule, params, name=policy, protocol=protocol), provenance)


def _register(name: str, description: str):
    def decorator(build: Callable[[str, Runs], Policy]):
        POLICIES.register(name, PolicyKind(description, build))
        return build
    return decorator


@_register("vanilla-slm", "the base SLM with a neutral prompt (no emotion)")
def _vanilla_slm(name: str, runs: Runs, params: SamplingParams) -> Policy:
    return _lm(name, runs, params, None)


@_register("vanilla-llm", "any larger model (--llm SPEC: a folder or an endpoint URL) with a neutral prompt")
def _vanilla_llm(name: str, runs: Runs, params: SamplingParams) -> Policy:
    if runs.llm is None:
        raise InputError("policy 'vanilla-llm' needs --llm SPEC (a model folder or http(s)://HOST/v1?model=NAME)")
    return _lm(name, runs, params, None, spec=runs.llm)


@_register("random-emotion", "the base SLM told a uniformly random emotion each turn")
def _random_emotion(name: str, runs: Runs, params: SamplingParams) -> Policy:
    return _lm(name, runs, params, UniformSchedule())


@_register("fixed-<emotion>", "the base SLM told the same emotion every turn (fixed-anger, fixed-joy, …)")
def _fixed(name: str, runs: Runs, params: SamplingParams) -> Policy:
    from emoneg_bench.agents.teacher import FixedSchedule

    return _lm(name, runs, params, FixedSchedule(name.removeprefix("fixed-")))


@_register("iql-only", "the IQL selector's emotion in the base SLM's prompt")
def _iql_only(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name)
    return _lm(name, runs, params, selector, extra={"selector_sha256": digest})


@_register("emodistill-sft", "the IQL selector + the LoRA-SFT adapter")
def _emodistill_sft(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name)
    sft = _need(runs, "sft", name, "emoneg train sft")
    return _lm(name, runs, params, selector, sft / ADAPTER, {"selector_sha256": digest})


@_register("emodistill", "the IQL selector + the LoRA-SFT adapter refined by JPO (the full method)")
def _emodistill(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name)
    jpo = _need(runs, "jpo", name, "emoneg train jpo")
    return _lm(name, runs, params, selector, jpo / ADAPTER, {"selector_sha256": digest})


@_register("emotion-free-sft", "LoRA-SFT on the same turns without the emotion instruction (ablation)")
def _emotion_free(name: str, runs: Runs, params: SamplingParams) -> Policy:
    adapter = _need(runs, "emotion_free", name, "emoneg train sft --no-emotion")
    return _lm(name, runs, params, None, adapter / ADAPTER)


@_register("teacher", "the builtin teacher (phrasing bank) with uniformly random emotions: the corpus policy")
def _teacher(name: str, runs: Runs, params: SamplingParams) -> Policy:
    return Policy(name, _named(TeacherAgent("random"), name), {"model": "builtin-teacher"})


@_register("iql-teacher", "the IQL selector with the builtin teacher's phrasing (selection without an LM)")
def _iql_teacher(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name)
    return Policy(name, _named(TeacherAgent(selector), name), {"model": "builtin-teacher", "selector_sha256": digest})


@_register("bc-top", "behaviour cloning of the emotions of the top episodes (comparator) + the base SLM")
def _bc_top(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name, "bc")
    return _lm(name, runs, params, selector, extra={"selector_sha256": digest})


@_register("bc-top-teacher", "bc-top with the builtin teacher's phrasing (selection without an LM)")
def _bc_top_teacher(name: str, runs: Runs, params: SamplingParams) -> Policy:
    selector, digest = _selector(runs, name, "bc")
    return Policy(name, _named(TeacherAgent(selector), name), {"model": "builtin-teacher", "selector_sha256": digest})


def _register_fixed_choice(kind: str, description: str) -> None:
    """``kind`` with the base SLM and ``kind-teacher`` with the phrasing bank."""
    def with_lm(name: str, runs: Runs, params: SamplingParams) -> Policy:
        chosen, digest = _best_fixed(runs, name, kind)
        return _lm(name, runs, params, chosen, extra={"selector_sha256": digest})

    def with_teacher(name: str, runs: Runs, params: SamplingParams) -> Policy:
        chosen, digest = _best_fixed(runs, name, kind)
        return Policy(name, _named(TeacherAgent(chosen), name), {"model": "builtin-teacher", "selector_sha256": digest})

    _register(kind, f"{description} + the base SLM")(with_lm)
    _register(f"{kind}-teacher", f"{description}, with the builtin teacher's phrasing")(with_teacher)


_register_fixed_choice("best-fixed", "the one emotion with the highest validation utility (comparator)")
_register_fixed_choice("best-fixed-domain", "the emotion with the highest validation utility in each domain")
_register_fixed_choice("persona-best-fixed", "REFERENCE, knows the persona: each persona's best emotion on "
                       "validation scenarios; an upper line for the headroom table, never a leaderboard entry")


def _named(agent: Agent, name: str) -> Agent:
    agent.name = name
    return agent


def policy_names() -> tuple[str, ...]:
    return POLICIES.names()


def make_policy(name: str, runs: Runs | None = None, params: SamplingParams | None = None) -> Policy:
    """The agent for a registered policy name (``fixed-<emotion>`` for any of the 28 emotions)."""
    runs, params = runs or Runs(), params or SamplingParams()
    key = name
    if name.startswith("fixed-"):
        if name.removeprefix("fixed-") not in GOEMOTIONS:
            raise UnknownNameError("emotion", name.removeprefix("fixed-"), GOEMOTIONS)
        key = "fixed-<emotion>"
    return POLICIES.get(key).build(name, runs, params)
