"""``emoneg reproduce``: build → train (IQL, SFT, emotion-free SFT, JPO) → evaluate (test, unseen
counterparties, cross-domain transfer, a tournament) → tables → leaderboard site, in one folder.

Every step writes its output atomically and is skipped when that output already exists, so an
interrupted run picks up where it stopped. ``quick`` is sized for a 2-core CPU in minutes (the demo), ``cpu`` gives the
full table on 2 CPU cores (1 h 40 min end to end on 2026-12-06: ``docs/results/cpu-2026-12-06.md``), ``paper``
is the full-scale recipe for a GPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from emoneg_bench.errors import InputError
from emoneg_bench.release import open_release

from .evaluate import EvalRequest, evaluate
from .policies import Runs

CONFIGS = Path(__file__).resolve().parents[1] / "builders" / "configs"
CONFIG, COUNTERPARTY_CONFIG = CONFIGS / "emoneg-v1.yaml", CONFIGS / "emoneg-v1-counterparty.yaml"
LM_POLICIES = ("vanilla-slm", "random-emotion", "iql-only", "emodistill-sft", "emodistill", "emotion-free-sft")
# no language model: every task, in seconds; the emotion selectors and their comparators with the phrasing bank
CHEAP_POLICIES = ("teacher", "iql-teacher", "best-fixed-teacher", "bc-top-teacher")
REFERENCE = "persona-best-fixed-teacher"  # knows the persona: an upper line of the headroom table only
TABLES = ("main", "metrics", "ablation", "headroom", "transfer", "tournament", "emotions")
# selection with the phrasing bank held fixed: the learned selector against random and its comparators
SELECTION_PAIRS = (("iql-teacher", "teacher"), ("iql-teacher", "best-fixed-teacher"), ("iql-teacher", "bc-top-teacher"),
                   ("best-fixed-teacher", "teacher"), ("bc-top-teacher", "teacher"))


@dataclass(frozen=True)
class Profile:
    name: str
    build_profile: str | None  # the builder config's profile (None = the full default release)
    iql_steps: int
    sft_steps: int  # −1 = one epoch
    sft_batch: int
    jpo_steps: int
    jpo_examples: int | None
    lm_limit: int | None  # test tasks per domain for the language-model policies (None = all)
    unseen_limit: int | None
    max_new_tokens: int
    batch_size: int
    bootstrap: int
    lm_policies: tuple[str, ...] = LM_POLICIES
    unseen_policies: tuple[str, ...] = ("vanilla-slm", "iql-only", "emodistill")
    tournament_counterparties: tuple[str, ...] = ("teacher",)
    # policies trained for the counterparty role (on the role-swapped corpus) that the focal policies meet
    counterparty_policies: tuple[str, ...] = ("iql-teacher",)
    tournament_policies: tuple[str, ...] = CHEAP_POLICIES[:2]  # the focal side of the tournament
    transfer_iql_steps: int | None = None  # steps of the per-domain selectors (None: iql_steps)
    bc_steps: int = 10_000
    sft_top_k: float = 0.10
    sft_eval_steps: int = 0  # > 0: the SFT step is chosen on validation loss, measured every so many steps
    jpo_eval_steps: int = 0  # > 0: the JPO step (0 included) is chosen on the validation objective, likewise


PROFILES = {
    # The demo on 2 CPU cores: a small release (16-message negotiations), a few SmolLM2 LoRA steps on compact
    # prompts, one task per domain and split for each language-model policy.
    "quick": Profile("quick", "quick", iql_steps=1500, sft_steps=12, sft_batch=4, jpo_steps=4, jpo_examples=16,
                     lm_limit=2, unseen_limit=2, max_new_tokens=128, batch_size=32, bootstrap=2000,
                     unseen_policies=LM_POLICIES, bc_steps=1500),
    # The table on 2 CPU cores: the default release, the selector and its comparators on every task, and every
    # SmolLM2 policy on 20 tasks per domain of both test splits. Run end to end on a 2-core AVX512-BF16 CPU in
    # 1 h 40 min (2026-12-06); the SFT step is chosen on validation loss (every 20 steps), JPO's on the validation
    # JPO objective (steps 0, 8, 16). On a CPU without native bf16, SFT steps take ~1.9x longer.
    "cpu": Profile("cpu", None, iql_steps=20000, sft_steps=60, sft_batch=8, jpo_steps=16, jpo_examples=128,
                   lm_limit=20, unseen_limit=20, max_new_tokens=128, batch_size=80, bootstrap=10000,
                   unseen_policies=LM_POLICIES, transfer_iql_steps=5000, sft_eval_steps=20, jpo_eval_steps=8),
    "paper": Profile("paper", None, iql_steps=20000, sft_steps=-1, sft_batch=4, jpo_steps=-1, jpo_examples=None, lm_limit=None,
                     unseen_limit=None, max_new_tokens=128, batch_size=64, bootstrap=10000,
                     unseen_policies=LM_POLICIES, tournament_counterparties=("teacher", "lm:smollm2"),
                     counterparty_policies=("iql-teacher", "emodistill"),
                     tournament_policies=(*CHEAP_POLICIES[:2], "emodistill")),
}


@dataclass
class Pipeline:
    profile: Profile
    out: Path
    model: str = "smollm2"
    progress: bool = True
    log: Callable[[str], None] = print
    done: list[str] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path:
        return self.out / "runs"

    @property
    def counterparty_runs_dir(self) -> Path:
        return self.out / "counterparty-runs"

    @property
    def results_dir(self) -> Path:
        return self.out / "results"

    def step(self, name: str, target: Path, work: Callable[[], object]) -> Path:
        if target.exists():
            self.log(f"[reproduce] {name}: done before ({target})")
            return target
        started = time.perf_counter()
        self.log(f"[reproduce] {name} …")
        work()
        self.log(f"[reproduce] {name}: {time.perf_counter() - started:.0f} s → {target}")
        self.done.append(name)
        return target

    # ---- stages --------------------------------------------------------------------------------

    def release(self, config_file: Path = CONFIG, folder_name: str = "release") -> Path:
        from builders.build import build
        from builders.config import load_config

        config = load_config(config_file, self.profile.build_profile)
        folder = self.out / folder_name
        existing = sorted(p for p in folder.glob("*/MANIFEST.json")) if folder.is_dir() else []
        if existing:
            self.log(f"[reproduce] {folder_name}: done before ({existing[0].parent})")
            open_release(existing[0].parent)  # a reused release is verified like any other
            return existing[0].parent
        self.log(f"[reproduce] {folder_name} …")
        return build(config, folder, progress=self.progress, source=config_file.name)

    def train(self, release: Path) -> Runs:
        from .bc import BCConfig, train_bc
        from .comparators import choose_best_fixed
        from .iql import train_iql
        from .jpo import train_jpo
        from .sft import train_sft

        runs = self.runs_dir
        iql = self.iql_config()
        self.step("train iql", runs / "iql" / "iql.json",
                  lambda: train_iql(release, runs / "iql", config=iql, progress=self.progress))
        transfer = replace(iql, steps=self.profile.transfer_iql_steps or iql.steps)
        for domain in self.domains(release):
            self.step(f"train iql on {domain}", runs / f"iql-{domain}" / "iql.json",
                      lambda d=domain: train_iql(release, runs / f"iql-{d}", domain=d, config=transfer,
                                                 progress=self.progress))
        self.step("choose best-fixed on validation", runs / "best-fixed" / "best_fixed.json",
                  lambda: choose_best_fixed(release, runs / "best-fixed", progress=self.progress))
        self.step("train bc-top", runs / "bc-top" / "bc.json",
                  lambda: train_bc(release, runs / "bc-top", config=BCConfig(steps=self.profile.bc_steps),
                                   progress=self.progress))
        sft = self.sft_settings()
        self.step("train sft", runs / "sft" / "training.json",
                  lambda: train_sft(release, runs / "sft", model=self.model, iql=runs / "iql", settings=sft,
                                    progress=self.progress))
        self.step("train emotion-free sft", runs / "emotion-free-sft" / "training.json",
                  lambda: train_sft(release, runs / "emotion-free-sft", model=self.model, iql=runs / "iql",
                                    emotion=False, settings=sft, progress=self.progress))
        jpo = self.jpo_settings()
        self.step("train jpo", runs / "jpo" / "training.json",
                  lambda: train_jpo(release, runs / "sft", runs / "jpo", settings=jpo, progress=self.progress))
        return Runs.in_folder(runs, model=self.model)

    # the training settings of this profile, shared by the focal and the counterparty-role runs

    def iql_config(self):
        from .iql import IQLConfig

        return IQLConfig(steps=self.profile.iql_steps)

    def sft_settings(self):
        from .sft import SFTSettings

        return SFTSettings(max_steps=self.profile.sft_steps, batch_size=self.profile.sft_batch,
                           top_k=self.profile.sft_top_k, eval_steps=self.profile.sft_eval_steps)

    def jpo_settings(self):
        from .jpo import JPOSettings

        p = self.profile
        return JPOSettings(max_steps=p.jpo_steps, max_examples=p.jpo_examples, batch_size=p.sft_batch,
                           eval_steps=p.jpo_eval_steps)

    def train_counterparty(self) -> Path:
        """The role-swapped corpus and the counterparty-role runs the tournament's trained counterparties use."""
        from .iql import train_iql
        from .jpo import train_jpo
        from .sft import train_sft

        p, runs = self.profile, self.counterparty_runs_dir
        release = self.release(COUNTERPARTY_CONFIG, "release-counterparty")
        self.step("train counterparty iql", runs / "iql" / "iql.json",
                  lambda: train_iql(release, runs / "iql", config=self.iql_config(), role="counterparty",
                                    progress=self.progress))
        if any(policy.startswith("emodistill") for policy in p.counterparty_policies):
            self.step("train counterparty sft", runs / "sft" / "training.json",
                      lambda: train_sft(release, runs / "sft", model=self.model, iql=runs / "iql", role="counterparty",
                                        settings=self.sft_settings(), progress=self.progress))
            self.step("train counterparty jpo", runs / "jpo" / "training.json",
                      lambda: train_jpo(release, runs / "sft", runs / "jpo", role="counterparty",
                                        settings=self.jpo_settings(), progress=self.progress))
        return runs

    def evaluate(self, release: Path, runs: Runs) -> list[Path]:
        p = self.profile
        base = EvalRequest("teacher", release, max_new_tokens=p.max_new_tokens, batch_size=p.batch_size)
        plan: list[tuple[str, EvalRequest, Runs]] = []
        for policy in (*CHEAP_POLICIES, REFERENCE):
            for split in ("test", "test_unseen_counterparty"):
                plan.append((f"{policy}__{split}", replace(base, policy=policy, split=split), runs))
        for policy in p.lm_policies:
            plan.append((f"{policy}__test", replace(base, policy=policy, limit=p.lm_limit), runs))
        for policy in p.unseen_policies:
            plan.append((f"{policy}__test_unseen_counterparty",
                         replace(base, policy=policy, split="test_unseen_counterparty", limit=p.unseen_limit), runs))
        # cross-domain transfer: the selector trained on one domain, evaluated on every domain
        for train_domain in self.domains(release):
            transfer_runs = replace(runs, iql=self.runs_dir / f"iql-{train_domain}")
            plan.append((f"transfer/iql-teacher[{train_domain}]",
                         replace(base, policy="iql-teacher", label=f"iql-teacher[trained on {train_domain}]"),
                         transfer_runs))
        # tournament: the focal policies against other counterparties than the personas, including
        # policies trained for the counterparty role (trained vs trained)
        opponents = [(c, _file_name(c)) for c in p.tournament_counterparties]
        opponents += [(f"policy:{name}@{self.counterparty_runs_dir}", f"cp-{name}") for name in p.counterparty_policies]
        for counterparty, file_label in opponents:
            for policy in p.tournament_policies:
                limit = None if policy in CHEAP_POLICIES else p.lm_limit
                plan.append((f"tournament/{policy}__vs-{file_label}",
                             replace(base, policy=policy, counterparty=counterparty, limit=limit), runs))
        paths = []
        for name, request, policy_runs in plan:
            target = self.results_dir / f"{name}.parquet"
            paths.append(self.step(f"eval {name}", target,
                                   lambda r=request, t=target, pr=policy_runs: evaluate(r, t, pr,
                                                                                       progress=self.progress)))
        return paths

    def tables(self, results: list[Path]) -> Path:
        from leaderboard.scoring import score

        tables_dir = self.out / "tables"
        main = [r for r in results if r.parent == self.results_dir and not r.name.startswith(REFERENCE)]
        selection = [r for r in results if r.parent == self.results_dir and r.name.startswith((*CHEAP_POLICIES, REFERENCE))]
        pairs = [p for p in SELECTION_PAIRS]
        which = {"main": (main, {}), "metrics": (main, {}), "ablation": (main, {}),
                 "headroom": (selection, {}),
                 "selection-test": ([r for r in selection if r.name.endswith("__test.parquet")], {"pairs": pairs}),
                 "selection-unseen": ([r for r in selection if r.name.endswith("__test_unseen_counterparty.parquet")],
                                      {"pairs": pairs}),
                 "transfer": ([r for r in main if r.name.startswith(CHEAP_POLICIES)], {"by": "split"}),
                 "transfer-domains": ([r for r in results if r.parent.name == "transfer"], {"by": "domain"}),
                 "tournament": ([r for r in results if r.parent.name == "tournament"]
                                + [r for r in main if r.name.startswith(CHEAP_POLICIES) and "unseen" not in r.name],
                                {}),
                 "emotions": (main, {"mode": "per-turn"})}
        tables_dir.mkdir(parents=True, exist_ok=True)
        for name, (paths, options) in which.items():
            table = "ablation" if name.startswith("selection") else name.split("-")[0]
            rendered = score(paths, table, bootstrap=self.profile.bootstrap, seed=0, **options)
            for fmt in ("md", "csv", "json"):
                (tables_dir / f"{name}.{fmt}").write_text(rendered.render(fmt) + "\n")
        return tables_dir

    def site(self, release: Path, results: list[Path]) -> Path:
        """Baselines that ran every official test task become leaderboard entries, then the site."""
        from leaderboard.board import submit
        from leaderboard.site import build_site
        from leaderboard.submission import write_submission

        board = self.out / "leaderboard"
        manifest = open_release(release)
        for policy in CHEAP_POLICIES[:2]:
            if (board / policy).is_dir():
                continue
            episodes = _episodes(release, self.results_dir / f"{policy}__test.parquet",
                                 self.results_dir / f"{policy}__test_unseen_counterparty.parquet")
            metadata = {"name": policy, "contact": "emoneg-bench reproduce", "model": policy, "protocol": "builtin",
                        "training_data": manifest["version"], "licence": "apache-2.0", "seeds": [0],
                        "description": f"baseline {policy}, evaluated by `emoneg reproduce --profile "
                                       f"{self.profile.name}`"}
            folder = write_submission(self.out / "submissions" / policy, episodes, metadata)
            report, _ = submit(folder, release, board)
            if not report.accepted:
                raise InputError(f"baseline {policy} was rejected by replay verification: {report.problems[:3]}")
        return build_site(board, self.out / "site", bootstrap=self.profile.bootstrap)

    def domains(self, release: Path) -> list[str]:
        return list(open_release(release)["builder_config"]["domains"])


def _file_name(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in spec)


def _episodes(release: Path, *paths: Path):
    from emoneg_bench.release import load_release_tasks, max_turns
    from leaderboard.submission import episodes_from_parquet

    tasks = {t.task_id: t for split in ("test", "test_unseen_counterparty") for t in load_release_tasks(release, split)}
    turns = max_turns(open_release(release))
    return [e for p in paths for e in episodes_from_parquet(p, tasks, turns)]


def reproduce(profile: str | Profile, out: str | Path, *, model: str = "smollm2", progress: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Run (or finish) the pipeline into ``out``; returns where everything is and which steps ran."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise InputError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}", field="profile")
        profile = PROFILES[profile]
    pipeline = Pipeline(profile, Path(out), model, progress, log)
    started = time.perf_counter()
    release = pipeline.release()
    runs = pipeline.train(release)
    pipeline.train_counterparty()
    results = pipeline.evaluate(release, runs)
    tables = pipeline.tables(results)
    site = pipeline.site(release, results)
    summary = {"profile": profile.name, "release": str(release), "runs": str(pipeline.runs_dir),
               "results": str(pipeline.results_dir), "tables": str(tables), "site": str(site),
               "steps_run": pipeline.done, "seconds": round(time.perf_counter() - started, 1)}
    (pipeline.out / "reproduce.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
