"""Run a policy on a release's evaluation tasks and write the episodes as Parquet in the ``episodes``
schema, plus provenance columns (policy, model/adapter/selector hashes, evaluation seed), so that
``emoneg score`` and the leaderboard read them like any other transcripts."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from emoneg_bench.backends.base import SamplingParams
from emoneg_bench.errors import EmoNegError, InputError, UnknownNameError
from emoneg_bench.negotiation import Task
from emoneg_bench.protocol import DEFAULT_PROTOCOL, check_protocol
from emoneg_bench.release import load_release_tasks, max_turns, open_release

from .data import check_domain
from .policies import Policy, Runs, make_policy

EVAL_SPLITS = ("test", "test_unseen_counterparty", "validation")
PROVENANCE = ("policy", "policy_label", "model", "model_sha256", "adapter_sha256", "selector_sha256",
              "protocol", "backend", "counterparty", "eval_seed", "release")


@dataclass(frozen=True)
class EvalRequest:
    policy: str
    release: Path
    split: str = "test"
    domain: str = "all"
    counterparty: str = "persona"  # the task's persona, the teacher, lm:<spec> or policy:NAME@RUNS_DIR
    limit: int | None = None  # tasks per domain, evenly spaced over the split (CPU budgets)
    label: str | None = None  # the focal_agent written to the rows (default: the policy name)
    batch_size: int = 32
    max_new_tokens: int = 128
    temperature: float = 0.0  # greedy by default: evaluations are reproducible
    seed: int = 0  # the sampling seed when temperature > 0
    protocol: str = DEFAULT_PROTOCOL  # how language-model policies state their moves


def pick_tasks(tasks: list[Task], domain: str, limit: int | None) -> list[Task]:
    """The split's tasks of ``domain``; with ``limit``, that many per domain, evenly spaced so that every
    scenario range and persona stays represented (tasks are scenario-major, persona-minor)."""
    by_domain: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if domain in ("all", task.scenario.domain):
            by_domain[task.scenario.domain].append(task)
    picked = []
    for pool in by_domain.values():
        if limit is None or limit >= len(pool):
            picked += pool
        else:
            picked += [pool[(i * len(pool)) // limit] for i in range(limit)]
    return picked


def counterparty_agent(spec: str, params: SamplingParams | None = None, runs: Runs | None = None):
    """The agent that plays the counterparty role for ``--counterparty spec``, and the provenance it adds.

    ``persona`` (each task's own), ``teacher``, ``lm:<model spec>``, or ``policy:NAME@RUNS_DIR``: the baseline
    policy NAME built from the runs in RUNS_DIR (``emoneg reproduce``'s layout), trained for the counterparty
    role; it expresses with the SLM of ``runs`` (the focal policy's, so both sides share a base model).
    """
    from emoneg_bench.agents.personas import PersonaAgent

    if spec == "persona":
        return PersonaAgent(), {"counterparty": "persona"}
    if spec == "teacher":
        from emoneg_bench.agents.teacher import TeacherAgent

        return TeacherAgent("random"), {"counterparty": "teacher"}
    if spec.startswith("lm:"):
        from emoneg_bench.agents.lm import LMNegotiator
        from emoneg_bench.backends import load_backend

        return LMNegotiator(load_backend(spec.removeprefix("lm:")), None, name=spec), {"counterparty": spec}
    if spec.startswith("policy:"):
        return _policy_counterparty(spec, params, runs or Runs()), {"counterparty": spec}
    raise InputError(f"unknown counterparty {spec!r}; expected 'persona', 'teacher', lm:<model spec> or "
                     "policy:NAME@RUNS_DIR", field="counterparty")


def _policy_counterparty(spec: str, params: SamplingParams | None, focal_runs: Runs):
    """``policy:NAME@RUNS_DIR`` as an agent named ``cp:NAME@FOLDER`` (FOLDER = RUNS_DIR's own name) in the
    episodes: the tournament's players are agent names, so the prefix keeps a trained counterparty apart
    from the focal policy NAME, and the folder keeps two counterparties trained as NAME apart."""
    name, at, folder = spec.removeprefix("policy:").partition("@")
    if not (name and at and folder):
        raise InputError(f"counterparty {spec!r} is not policy:NAME@RUNS_DIR (e.g. "
                         "policy:emodistill@runs/counterparty)", field="counterparty")
    runs_dir = Path(folder)
    if not runs_dir.is_dir():
        raise InputError(f"counterparty {spec!r}: no such runs folder", file=folder, field="counterparty")
    runs = Runs.in_folder(runs_dir, model=focal_runs.model, llm=focal_runs.llm)
    try:
        policy = make_policy(name, runs, params)
    except UnknownNameError as error:
        raise InputError(f"counterparty {spec!r}: {error}", file=folder, field="counterparty") from None
    except EmoNegError as error:  # a missing run: say where it should be
        raise InputError(f"counterparty {spec!r}: {error} (the runs folder holds iql/, sft/, jpo/, "
                         "emotion-free-sft/ like `emoneg reproduce`'s runs)", file=folder,
                         field="counterparty") from None
    _check_trained_for_counterparty(policy, spec, runs_dir)
    policy.agent.name = f"cp:{name}@{runs_dir.resolve().name}"
    return policy.agent


def _check_trained_for_counterparty(policy: Policy, spec: str, runs_dir: Path) -> None:
    """Refuse an IQL selector trained on focal decisions: its states are the counterparty's own, but its
    values and choices were learned for the other side of the table."""
    from .selector import IQLSelector

    selector = getattr(policy.agent, "schedule", None)
    if isinstance(selector, IQLSelector):
        role = selector.metadata.get("data", {}).get("role", "focal")
        if role != "counterparty":
            raise InputError(f"counterparty {spec!r}: its IQL selector was trained on {role} transitions; "
                             "a counterparty policy needs one trained on counterparty transitions "
                             "(`emoneg train iql --role counterparty` on a release built with teacher.role: "
                             "counterparty)", file=str(runs_dir / "iql"), field="counterparty")


def evaluate(request: EvalRequest, out: str | Path, runs: Runs | None = None, *, progress: bool = True,
             recognizer=None) -> dict:
    """Play ``request.policy`` on the split's tasks and write ``out`` atomically; returns a summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    from emoneg_bench.engine import Engine
    from emoneg_bench.judge import RubricJudge
    from emoneg_bench.perception.recognizer import default_recognizer
    from emoneg_bench.schema import episode_row, features

    if request.split not in EVAL_SPLITS:
        raise InputError(f"unknown split {request.split!r}; expected one of {', '.join(EVAL_SPLITS)}", field="split")
    check_domain(request.domain)
    manifest = open_release(request.release, ("tasks", "scenarios"))
    tasks = pick_tasks(load_release_tasks(request.release, request.split), request.domain, request.limit)
    if not tasks:
        raise InputError(f"release {request.release} has no {request.split} tasks for domain {request.domain!r}")
    params = SamplingParams(max_new_tokens=request.max_new_tokens, temperature=request.temperature, seed=request.seed)
    policy: Policy = make_policy(request.policy, replace(runs or Runs(), protocol=check_protocol(request.protocol)),
                                 params)
    counterparty, who = counterparty_agent(request.counterparty, params, runs)
    engine = Engine(recognizer or default_recognizer(), max_turns(manifest))
    with tqdm(total=len(tasks), unit="ep", desc=f"{request.policy} on {request.split}", disable=not progress) as bar:
        episodes = list(engine.run(tasks, policy.agent, counterparty, batch_size=request.batch_size, progress=bar))
    judge = RubricJudge()
    label = request.label or policy.name
    provenance = {"policy": policy.name, "policy_label": label, "model": None, "model_sha256": None,
                  "adapter_sha256": None, "selector_sha256": None, "protocol": None, "backend": None,
                  **policy.provenance, **who,
                  "eval_seed": request.seed, "release": manifest.get("release")}
    rows = []
    for episode in episodes:
        row = episode_row(episode, request.split, judge.score_episode(episode))
        rows.append(row | {"focal_agent": label} | provenance)
    schema = features("episodes").arrow_schema
    for name in PROVENANCE:
        schema = schema.append(pa.field(name, pa.int64() if name == "eval_seed" else pa.string()))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    os.replace(tmp, out)
    utilities = [r["utility"] for r in rows if r["ending_name"] != "error"]
    return {"policy": label, "split": request.split, "episodes": len(rows), "out": str(out),
            "mean_utility": sum(utilities) / len(utilities) if utilities else None,
            "errors": sum(r["ending_name"] == "error" for r in rows)}
