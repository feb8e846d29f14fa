"""``emoneg train iql|sft|jpo``, ``emoneg eval`` and ``emoneg policies``: the baselines' commands,
registered on the front door's parser by ``emoneg_bench.cli``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from emoneg_bench.backends.http_limits import add_http_options
from emoneg_bench.errors import InputError
from emoneg_bench.outputs import check_output, commit_run_folder, run_folder

RELEASE_HELP = "release folder (built with `emoneg build`)"


def _run_folder(args: argparse.Namespace, finished: str, *reads: str | None) -> Path:
    """Where the run is trained: ``--out`` itself, or (``--overwrite`` of a finished run) a folder beside it
    that :func:`commit_run_folder` swaps in at the end."""
    return run_folder(args.out, finished=finished, overwrite=args.overwrite, reads=[r for r in reads if r])


def _train_iql(args: argparse.Namespace) -> int:
    from .iql import METADATA, IQLConfig, train_iql

    config = IQLConfig(steps=args.steps, seed=args.seed, batch_size=args.batch_size, beta=args.beta,
                       expectile=args.expectile, reward=args.reward)
    work = _run_folder(args, METADATA, args.release)
    train_iql(args.release, work, domain=args.domain, config=config, progress=not args.quiet,
              role=args.role, device=args.device, threads=args.threads, temperature=args.temperature)
    commit_run_folder(work, args.out)
    _report_selector(Path(args.out) / METADATA, "IQL selector")
    return 0


def _train_bc(args: argparse.Namespace) -> int:
    from .bc import METADATA, BCConfig, train_bc

    config = BCConfig(top_fraction=args.top_fraction, steps=args.steps, seed=args.seed, batch_size=args.batch_size)
    work = _run_folder(args, METADATA, args.release)
    train_bc(args.release, work, domain=args.domain, config=config, role=args.role, progress=not args.quiet,
             temperature=args.temperature, threads=args.threads)
    commit_run_folder(work, args.out)
    _report_selector(Path(args.out) / METADATA, "bc-top selector")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .bc import BCConfig
    from .iql import IQLConfig
    from .tune import BC_GRID, IQL_GRID, tune

    config = IQLConfig if args.kind == "iql" else BCConfig
    base = config() if args.steps is None else config(steps=args.steps)
    grid = dict(IQL_GRID if args.kind == "iql" else BC_GRID)
    given = {"reward": args.reward, "beta": args.beta, "expectile": args.expectile, "top_fraction": args.top_fraction}
    for key, values in given.items():
        if values is None:
            continue
        if key not in grid:
            raise InputError(f"--{key.replace('_', '-')} does not apply to tune {args.kind}", field=key)
        grid[key] = tuple(values)
    chosen = tune(args.kind, args.release, args.out, base=base, grid=grid, role=args.role,
                  progress=not args.quiet, threads=args.threads, log=print)
    _report_selector(chosen / ("iql.json" if args.kind == "iql" else "bc.json"), f"chosen {args.kind} selector")
    print(f"validation table: {Path(args.out) / f'selection-{args.kind}.md'}")
    return 0


def _report_selector(metadata_file: Path, what: str) -> None:
    extraction = json.loads(metadata_file.read_text()).get("extraction", {})
    scores = extraction.get("validation_utility")
    fallback = extraction.get("fallback")
    how = f"temperature {extraction.get('temperature', 1):g}" + (
        f", falling back to {fallback['emotion']} unless the critic rates the pick > {fallback['margin']:g} above it"
        if fallback else "")
    shown = {k: u for k, u in (scores or {}).items() if " " not in k or k == extraction.get("chosen")}
    chosen = (f"; extraction {how} chosen on validation ({', '.join(f'{k}: {u:.3f}' for k, u in shown.items())})"
              if scores else f"; extraction {how} (given)")
    print(f"wrote {what} {metadata_file.parent}{chosen}")


def _train_best_fixed(args: argparse.Namespace) -> int:
    from .comparators import CHOICES, choose_best_fixed

    work = _run_folder(args, CHOICES, args.release)
    choose_best_fixed(args.release, work, role=args.role, progress=not args.quiet)
    commit_run_folder(work, args.out)
    record = json.loads((Path(args.out) / CHOICES).read_text())
    overall = record["validation_utility"]["overall"]
    print(f"wrote {Path(args.out) / CHOICES}: best-fixed = {record['best_fixed']} ({overall[record['best_fixed']]:.3f} on "
          f"{record['validation_tasks']} validation tasks); per domain "
          + ", ".join(f"{d}: {e}" for d, e in record["best_fixed_domain"].items()))
    return 0


def _train_sft(args: argparse.Namespace) -> int:
    from .sft import SFTSettings, train_sft
    from .training import METADATA

    work = _run_folder(args, METADATA, args.release, args.iql)
    settings = SFTSettings(top_k=args.top_k, learning_rate=args.lr, batch_size=args.batch_size, epochs=args.epochs,
                           max_steps=args.max_steps, seed=args.seed, save_steps=args.save_steps,
                           group_by_length=not args.no_length_grouping, eval_steps=args.eval_steps,
                           eval_examples=args.eval_examples)
    run = train_sft(args.release, work, model=args.model, iql=args.iql, domain=args.domain,
                    emotion=not args.no_emotion, role=args.role, settings=settings, progress=not args.quiet)
    commit_run_folder(work, args.out)
    _report(run, args.out)
    return 0


def _train_jpo(args: argparse.Namespace) -> int:
    from .jpo import JPOSettings, train_jpo
    from .training import METADATA

    work = _run_folder(args, METADATA, args.release, args.sft)
    settings = JPOSettings(epsilon=args.epsilon, beta=args.beta, learning_rate=args.lr, batch_size=args.batch_size,
                           epochs=args.epochs, max_steps=args.max_steps, max_examples=args.max_examples,
                           seed=args.seed, save_steps=args.save_steps, group_by_length=not args.no_length_grouping,
                           eval_steps=args.eval_steps, eval_examples=args.eval_examples)
    run = train_jpo(args.release, args.sft, work, domain=args.domain, role=args.role, settings=settings,
                    progress=not args.quiet)
    commit_run_folder(work, args.out)
    _report(run, args.out)
    return 0


def _report(run: dict, out: str) -> None:
    curve = run["losses"]
    moved = f", loss {curve[0]:.3f} → {curve[-1]:.3f}" if curve else ""
    print(f"wrote {run['kind']} adapter {Path(out) / 'adapter'}: {run['examples']} examples, {run['steps']} steps{moved}")


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import EvalRequest, evaluate
    from .policies import Runs

    check_output(args.out, overwrite=args.overwrite, what="results file",
                 reads=[r for r in (args.release, args.runs, args.iql, args.sft, args.jpo, args.emotion_free) if r])
    runs = Runs.in_folder(args.runs, iql=args.iql, sft=args.sft, jpo=args.jpo, emotion_free=args.emotion_free,
                          model=args.model, llm=args.llm) if args.runs else \
        Runs(iql=args.iql, sft=args.sft, jpo=args.jpo, emotion_free=args.emotion_free, model=args.model, llm=args.llm)
    request = EvalRequest(args.policy, Path(args.release), args.split, args.domain, args.counterparty, args.limit,
                          args.label, args.batch_size, args.max_new_tokens, args.temperature, args.seed,
                          args.protocol)
    summary = evaluate(request, args.out, runs, progress=not args.quiet)
    print(json.dumps(summary) if args.json else
          f"{summary['policy']} on {summary['split']}: {summary['episodes']} episodes, mean utility "
          f"{summary['mean_utility']:.3f}, {summary['errors']} failed → {summary['out']}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    summary = reproduce(args.profile, args.out, model=args.model, progress=not args.quiet)
    print(f"reproduce --profile {summary['profile']} finished in {summary['seconds']:.0f} s:")
    for key in ("release", "runs", "results", "tables", "site"):
        print(f"  {key:<8} {summary[key]}")
    return 0


def _policies(args: argparse.Namespace) -> int:
    from .policies import POLICIES

    for name, kind in POLICIES.items():
        print(f"  {name:<18} {kind.description}")
    return 0


def _positive_fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text}")
    return value


def register(commands, command) -> None:
    """Add the baselines' commands; ``command(subparsers, name, help, examples, handler)`` makes one."""
    from .iql import IQLConfig  # no torch at import time

    iql_defaults = IQLConfig()
    train = commands.add_parser("train", help="train the baselines: IQL selector, LoRA-SFT, JPO",
                                description="Train the EmoDistill components on a release.",
                                epilog="examples:\n  emoneg train iql --release R --out runs/iql\n"
                                       "  emoneg train sft --release R --iql runs/iql --out runs/sft\n"
                                       "  emoneg train jpo --release R --sft runs/sft --out runs/jpo\n",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    trainers = train.add_subparsers(dest="trainer", required=True, metavar="TRAINER")

    iql = command(trainers, "iql", "discrete-action IQL emotion selector on the release's transitions",
                  "  emoneg train iql --release releases/emoneg-trajectories-v2.0.0 --out runs/iql\n"
                  "  emoneg train iql --release R --domain debt --steps 5000 --out runs/iql-debt\n"
                  "  emoneg train iql --release R --device cpu --threads 1 --out runs/iql\n", _train_iql)
    sft = command(trainers, "sft", "LoRA-SFT of the SLM on the top-K%% focal turns by IQL advantage",
                  "  emoneg train sft --release R --iql runs/iql --out runs/sft\n"
                  "  emoneg train sft --release R --iql runs/iql --no-emotion --out runs/emotion-free-sft\n"
                  "  emoneg train sft --release R --iql runs/iql --model /models/my-slm --max-steps 200 --out runs/sft\n",
                  _train_sft)
    jpo = command(trainers, "jpo", "Judge Policy Optimization of an SFT adapter on logged judge scores",
                  "  emoneg train jpo --release R --sft runs/sft --out runs/jpo\n"
                  "  emoneg train jpo --release R --sft runs/sft --max-examples 512 --max-steps 50 --out runs/jpo\n",
                  _train_jpo)
    bc = command(trainers, "bc", "bc-top comparator: behaviour cloning of the emotions of the top episodes",
                 "  emoneg train bc --release R --out runs/bc-top\n"
                 "  emoneg train bc --release R --top-fraction 0.25 --out runs/bc-top-25\n", _train_bc)
    best = command(trainers, "best-fixed", "choose the best fixed emotion (overall, per domain, per persona) on "
                   "validation", "  emoneg train best-fixed --release R --out runs/best-fixed\n", _train_best_fixed)
    for parser in (iql, sft, jpo, bc, best):
        parser.add_argument("--release", required=True, help=RELEASE_HELP)
        parser.add_argument("--out", required=True, help="run folder (an interrupted run resumes from it)")
        parser.add_argument("--overwrite", action="store_true",
                            help="train again over a finished run in --out (the old run stays until the new one "
                                 "has finished)")
        parser.add_argument("--domain", default="all", help="train on one domain (default all)")
        parser.add_argument("--role", default="focal", choices=("focal", "counterparty"),
                            help="whose decisions to learn (counterparty: a release built with teacher.role "
                                 "counterparty; default focal)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--quiet", action="store_true", help="no progress bar")
    iql.add_argument("--steps", type=int, default=20000, help="gradient steps (default 20000)")
    iql.add_argument("--batch-size", type=int, default=256)
    iql.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    iql.add_argument("--beta", type=float, default=iql_defaults.beta,
                     help="inverse temperature of the advantage weights (default %(default)s)")
    iql.add_argument("--expectile", type=float, default=iql_defaults.expectile,
                     help="expectile of the value regression (default %(default)s)")
    iql.add_argument("--reward", default=iql_defaults.reward, choices=("shaped", "utility"),
                     help="shaped: the release's reward; utility: the agreement's utility only (default %(default)s)")
    for parser in (iql, bc):
        parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; 1 is faster "
                                                        "when another process shares the cores)")
        parser.add_argument("--temperature", type=float, help="extraction temperature (0 = argmax); default: chosen "
                                                              "on the release's validation tasks")
    bc.add_argument("--top-fraction", type=_positive_fraction, default=0.1,
                    help="share of train episodes kept, by utility (default %(default)s)")
    bc.add_argument("--steps", type=int, default=10000, help="gradient steps (default %(default)s)")
    bc.add_argument("--batch-size", type=int, default=256)
    for parser, lr, batch in ((sft, 2e-4, 4), (jpo, 1e-5, 4)):
        parser.add_argument("--lr", type=float, default=lr, help="learning rate (default %(default)s)")
        parser.add_argument("--batch-size", type=int, default=batch)
        parser.add_argument("--epochs", type=float, default=1.0)
        parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (overrides epochs)")
        parser.add_argument("--save-steps", type=int, default=50, help="checkpoint every this many steps")
        parser.add_argument("--no-length-grouping", action="store_true",
                            help="plain shuffled batches (default: each batch holds examples of similar length, "
                                 "so less of it is padding)")
    sft.add_argument("--model", default="smollm2", help="base model: smollm2 or a local model folder")
    sft.add_argument("--iql", help="trained IQL run ranking turns by Q − V (default: the release's Monte-Carlo "
                                   "advantage)")
    sft.add_argument("--top-k", type=_positive_fraction, default=0.10, help="fraction of focal turns kept (0.10)")
    sft.add_argument("--eval-steps", type=int, default=0,
                     help="measure the loss on the validation split's selected turns every this many steps and keep "
                          "the adapter of the step with the lowest (default 0: keep the last step)")
    jpo.add_argument("--eval-steps", type=int, default=0,
                     help="measure the JPO objective on validation turns before training and every this many steps, "
                          "and keep the adapter of the step with the lowest (step 0 keeps the SFT adapter; default 0: "
                          "keep the last step)")
    for parser in (sft, jpo):
        parser.add_argument("--eval-examples", type=int, default=64, help="validation turns the loss is measured on (64)")
    sft.add_argument("--no-emotion", action="store_true", help="emotion-free ablation: drop the emotion instruction")
    jpo.add_argument("--sft", required=True, help="the SFT run to start from (and keep as the frozen reference)")
    jpo.add_argument("--epsilon", type=float, default=0.2, help="PPO clip range (0.2)")
    jpo.add_argument("--beta", type=float, default=0.04, help="KL weight (0.04)")
    jpo.add_argument("--max-examples", type=int, help="train on a seeded subsample of the logged turns")

    tn = command(commands, "tune", "choose a selector's settings on validation (IQL: reward × β × expectile; bc: the "
                 "top-episode cut) and keep the winner",
                 "  emoneg tune iql --release R --out runs/tune       (winner in runs/tune/iql)\n"
                 "  emoneg tune bc --release R --out runs/tune        (winner in runs/tune/bc-top)\n"
                 "  emoneg tune iql --release R --out runs/tune --reward shaped --beta 30 100   (a narrower grid)\n",
                 _tune)
    tn.add_argument("kind", choices=("iql", "bc"))
    tn.add_argument("--release", required=True, help=RELEASE_HELP)
    tn.add_argument("--out", required=True, help="folder for the candidates, the winner and the validation table")
    tn.add_argument("--steps", type=int, help="gradient steps per candidate (default: the trainer's)")
    tn.add_argument("--reward", nargs="+", choices=("shaped", "utility"),
                    help="IQL rewards to try (default: shaped utility)")
    tn.add_argument("--beta", nargs="+", type=float, help="IQL β values to try (default: 3 10 30 100)")
    tn.add_argument("--expectile", nargs="+", type=float, help="IQL expectiles to try (default: 0.7 0.9)")
    tn.add_argument("--top-fraction", nargs="+", type=float,
                    help="bc-top cuts to try (default: 0.05 0.1 0.25 0.5)")
    tn.add_argument("--role", default="focal", choices=("focal", "counterparty"))
    tn.add_argument("--threads", type=int, help="torch CPU threads")
    tn.add_argument("--quiet", action="store_true", help="no progress bars")

    ev = command(commands, "eval", "run a policy on a release's evaluation tasks; write episodes-schema Parquet",
                 "  emoneg eval --policy teacher --release R --split test --out results/teacher.parquet\n"
                 "  emoneg eval --policy emodistill --runs runs/ --release R --split test_unseen_counterparty "
                 "--out results/emodistill-unseen.parquet\n"
                 "  emoneg eval --policy iql-only --iql runs/iql-debt --release R --domain hospital "
                 "--label 'iql-only[debt]' --out results/transfer.parquet\n"
                 "  emoneg eval --policy vanilla-llm --llm 'http://127.0.0.1:8000/v1?model=big' --release R "
                 "--out results/llm.parquet\n", _eval)
    ev.add_argument("--policy", required=True, help="a policy name (see `emoneg policies`)")
    ev.add_argument("--release", required=True, help=RELEASE_HELP)
    ev.add_argument("--out", required=True, help="results Parquet file")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing results file")
    ev.add_argument("--split", default="test", help="test | test_unseen_counterparty | validation (default test)")
    ev.add_argument("--domain", default="all")
    ev.add_argument("--counterparty", default="persona", help="persona (each task's), teacher, lm:MODEL or policy:NAME@RUNS_DIR (a policy trained "
                                         "for the counterparty role)")
    ev.add_argument("--runs", help="folder with iql/, sft/, jpo/, emotion-free-sft/ runs (emoneg reproduce's layout)")
    ev.add_argument("--iql", help="IQL run folder")
    ev.add_argument("--sft", help="SFT run folder")
    ev.add_argument("--jpo", help="JPO run folder")
    ev.add_argument("--emotion-free", help="emotion-free SFT run folder")
    ev.add_argument("--model", default="smollm2", help="the SLM (smollm2 or a model folder)")
    ev.add_argument("--llm", help="model spec of vanilla-llm (folder or http(s)://HOST/v1?model=NAME)")
    ev.add_argument("--limit", type=int, help="evaluate this many tasks per domain, evenly spaced (CPU budgets)")
    ev.add_argument("--label", help="name the policy gets in the results (default the policy name)")
    ev.add_argument("--batch-size", type=int, default=32, help="episodes advanced together (default 32)")
    ev.add_argument("--max-new-tokens", type=int, default=128,
                    help="most tokens per reply (128: a 160-character message plus the JSON around it)")
    ev.add_argument("--protocol", default="structured", choices=("structured", "text"),
                    help="how language-model policies state their moves (default structured: one JSON object per "
                         "turn, enforced while decoding)")
    ev.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default, reproducible)")
    ev.add_argument("--seed", type=int, default=0, help="sampling seed when --temperature > 0")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    add_http_options(ev)

    command(commands, "policies", "list the baseline policies", "  emoneg policies\n", _policies)

    rep = command(commands, "reproduce", "build → train → evaluate → tables → leaderboard site, reusing finished steps",
                  "  emoneg reproduce --profile quick --out runs/demo      (SmolLM2 on CPU, the demo)\n"
                  "  emoneg reproduce --profile cpu --out runs/cpu         (the full table on 2 CPU cores, < 2 h)\n"
                  "  emoneg reproduce --profile paper --out runs/paper     (full scale, for a GPU)\n"
                  "  (re-running the same command resumes: finished steps are skipped)\n", _reproduce)
    rep.add_argument("--profile", default="quick", choices=("quick", "cpu", "paper"))
    rep.add_argument("--out", required=True, help="run folder (release/, runs/, results/, tables/, site/)")
    rep.add_argument("--model", default="smollm2", help="the SLM (smollm2 or a model folder)")
    rep.add_argument("--quiet", action="store_true", help="no progress bars")

