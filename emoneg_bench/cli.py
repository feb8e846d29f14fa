"""``emoneg`` — the command-line front door. Every command has ``--help`` with examples; user mistakes
print one ``error:`` line (exit status 2), never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from .backends.http_limits import add_http_options, limits_from_args, using_limits
from .errors import EmoNegError, InputError

Handler = Callable[[argparse.Namespace], int]
OVERWRITE_HELP = "replace an existing output (default: refuse to touch it)"


def _command(subparsers, name: str, help_text: str, examples: str, handler: Handler) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text,
                                   epilog="examples:\n" + examples,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


@lru_cache(maxsize=1)
def _recognizer():
    from .perception.recognizer import default_recognizer

    return default_recognizer()


# ---------------------------------------------------------------------------------------------- scenarios

def _scenarios_generate(args: argparse.Namespace) -> int:
    from .domains import generate_scenarios, get_domain
    from .outputs import check_output
    from .scenario_io import check_output_path, write_scenarios

    get_domain(args.domain)
    if args.count < 1:
        raise InputError(f"--count must be at least 1, got {args.count}")
    check_output(check_output_path(args.out), overwrite=args.overwrite)
    path = write_scenarios(generate_scenarios(args.domain, args.count, args.seed), args.out)
    print(f"wrote {args.count} {args.domain} scenarios (seed {args.seed}) to {path}")
    return 0


def _scenarios_import(args: argparse.Namespace) -> int:
    from .domains import get_domain
    from .domains.importer import import_scenarios
    from .outputs import check_output, write_together
    from .scenario_io import check_output_path, rows_writer

    get_domain(args.domain)
    out = check_output_path(args.out)
    reports = {kind: out.with_name(f"{out.stem}.{kind}.csv") for kind in ("repairs", "rejections")}
    for path, what in ((out, "output"), *((p, f"{kind} file") for kind, p in reports.items())):
        check_output(path, overwrite=args.overwrite, reads=[args.csv], what=what)
    result = import_scenarios(args.csv, args.domain)
    print(f"{args.csv}: imported {len(result.scenarios)} "
          f"(repaired {len(result.repaired)}), rejected {len(result.rejected)}")
    if not result.scenarios:
        reasons = "; ".join(f"row {n.row}: {n.reason}" for n in result.rejected[:3])
        raise InputError(f"no row could be imported ({reasons})", file=args.csv)
    notes = {"repairs": result.repaired, "rejections": result.rejected}
    # the scenarios and their reports are replaced together; a report this import does not produce is
    # removed, so an earlier import's rejections never sit next to a clean re-import
    write_together({out: rows_writer([s.to_record() for s in result.scenarios], out.suffix)} | {
        reports[kind]: rows_writer([{"row": n.row, "source_id": n.source_id, "kind": n.kind, "reason": n.reason}
                                    for n in notes[kind]], ".csv") if notes[kind] else None for kind in reports})
    print(f"wrote {out}")
    for kind, path in reports.items():
        if notes[kind]:
            counts = Counter(n.kind for n in notes[kind])
            print(f"wrote {len(notes[kind])} {kind} with reasons to {path} "
                  f"({', '.join(f'{reason}: {count}' for reason, count in sorted(counts.items()))})")
    return 0


# ---------------------------------------------------------------------------------------------- play

def _agent(spec: str, role: str, schedule, backends: dict, protocol: str = "structured"):
    """``teacher``, ``persona:NAME`` or ``lm:SPEC`` → an agent (LM backends are shared between roles)."""
    from .agents.personas import PersonaAgent
    from .agents.teacher import TeacherAgent

    if spec == "teacher":
        return TeacherAgent(schedule or "random")
    if spec.startswith("persona:"):
        return PersonaAgent(spec.removeprefix("persona:"))
    if spec.startswith("lm:"):
        from .agents.lm import LMNegotiator
        from .backends import load_backend

        model = spec.removeprefix("lm:")
        if model not in backends:
            backends[model] = load_backend(model)
        return LMNegotiator(backends[model], schedule, protocol=protocol)
    raise InputError(f"unknown --{role} {spec!r}; expected teacher, persona:NAME or lm:MODEL")


def _play(args: argparse.Namespace) -> int:
    from .agents.personas import get_persona
    from .agents.teacher import parse_schedule
    from .domains import generate_scenarios, get_domain
    from .engine import Engine
    from .judge import RubricJudge
    from .negotiation import Role, Task
    from .scenario_io import read_scenarios
    from .transcript import format_transcript

    domain = get_domain(args.domain)
    counterparty = args.counterparty or (f"persona:{args.persona}" if args.persona else None)
    if counterparty is None:
        raise InputError("say who the counterparty is: --persona NAME or --counterparty lm:MODEL")
    if counterparty.startswith("persona:"):
        get_persona(counterparty.removeprefix("persona:"))
    spec = args.emotion if args.emotion else args.schedule
    schedule = None if spec == "none" else parse_schedule(spec)
    pool = read_scenarios(args.scenarios) if args.scenarios else generate_scenarios(domain, 100, args.scenario_seed)
    matches = [s for s in pool if s.scenario_id == args.scenario and s.domain == domain.id]
    if not matches:
        known = ", ".join(s.scenario_id for s in pool[:3])
        raise InputError(f"no {domain.id} scenario {args.scenario!r} (ids look like {known}, …)")
    if not 2 <= args.max_turns <= 200:
        raise InputError(f"--max-turns must be between 2 and 200, got {args.max_turns}")
    backends: dict = {}
    focal = _agent(args.focal, "focal", schedule, backends, args.protocol)
    other = _agent(counterparty, "counterparty", None, backends, args.protocol)
    task = Task(matches[0], counterparty.split(":", 1)[-1] if counterparty.startswith("persona:") else "lm", args.seed)
    episode = Engine(_recognizer(), max_turns=args.max_turns).play(task, focal, other)
    scores = RubricJudge().score_episode(episode, Role.FOCAL)
    if args.json:
        from .transcript import episode_to_dict

        print(json.dumps(episode_to_dict(episode, scores), indent=2))
    else:
        print(format_transcript(episode, scores))
    return 0


# ---------------------------------------------------------------------------------------------- sweep

def _sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .agents.personas import get_persona, persona_names
    from .domains import domain_ids, get_domain
    from .emotions import GOEMOTIONS, get_emotion
    from .sweep import emotion_sweep, format_table

    domains = args.domain or list(domain_ids())
    for d in domains:
        get_domain(d)
    emotions = args.emotions.split(",") if args.emotions else list(GOEMOTIONS)
    for e in emotions:
        get_emotion(e)
    personas = args.personas.split(",") if args.personas else list(persona_names(held_out=False))
    for p in personas:
        get_persona(p)
    if args.episodes < 1:
        raise InputError(f"--episodes must be at least 1, got {args.episodes}")
    recognizer = _recognizer()
    total = len(domains) * len(emotions) * len(personas) * args.episodes
    with tqdm(total=total, unit="ep", desc="sweep", disable=args.quiet) as bar:
        outcomes = emotion_sweep(recognizer, domains, emotions, personas, args.episodes, args.seed, progress=bar)
    print(f"Fixed-emotion sweep: teacher vs {len(personas)} training personas, {args.episodes} episodes per "
          f"persona, domain and emotion (seed {args.seed}). U = mean focal utility.")
    print(format_table(outcomes))
    return 0


# ---------------------------------------------------------------------------------------------- releases

def _build(args: argparse.Namespace) -> int:
    from builders.build import build
    from builders.config import load_config

    config = load_config(args.config, args.profile)
    path = build(config, args.out, num_shards=args.num_shards, shard=args.shard, progress=not args.quiet,
                 source=Path(args.config).name)
    if args.num_shards > 1:
        print(f"wrote part {args.shard} of {args.num_shards} to {path}; combine the parts with `emoneg merge`")
    else:
        print(f"wrote release {path}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from builders.build import merge

    print(f"wrote release {merge(args.parts, args.out, source=args.source)}")
    return 0


def _validate_release(args: argparse.Namespace) -> int:
    from builders.validate import validate_release

    problems = validate_release(args.release)
    if not problems:
        print(f"{args.release}: valid release")
        return 0
    for problem in problems:
        print(f"{problem.where}: {problem.message}")
    print(f"{args.release}: {len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
    return 1


def _publish(args: argparse.Namespace) -> int:
    from builders.publish import publish

    print(publish(args.release, args.repo_id, dry_run=args.dry_run, private=args.private))
    return 0


# ---------------------------------------------------------------------------------------------- scoring

def _score(args: argparse.Namespace) -> int:
    from leaderboard.scoring import score

    if args.bootstrap < 100:
        raise InputError(f"--bootstrap must be at least 100 resamples, got {args.bootstrap}")
    options = {"by": args.by} if args.table == "transfer" and args.by else {}
    if args.table == "headroom":
        options = {k: v for k, v in (("random", args.random), ("reference", args.reference)) if v}
    if args.pair:
        if args.table != "ablation":
            raise InputError("--pair is an option of --table ablation")
        pairs = [tuple(pair.split(":", 1)) for pair in args.pair]
        bad = [pair for pair, parsed in zip(args.pair, pairs) if len(parsed) != 2 or not all(parsed)]
        if bad:
            raise InputError(f"--pair {bad[0]!r} is not POLICY:BASELINE", field="pair")
        options = {"pairs": pairs}
    print(score(args.results, args.table, bootstrap=args.bootstrap, seed=args.seed, **options).render(args.format))
    return 0


def _leaderboard_validate(args: argparse.Namespace) -> int:
    from leaderboard.submission import describe, validate_submission

    report = validate_submission(args.submission, args.release, recognizer=_recognizer())
    print(describe(report))
    if not report.accepted:
        raise InputError(f"submission rejected ({len(report.problems)} problem{'s' * (len(report.problems) != 1)}, "
                         "listed above)", file=args.submission)
    return 0


def _leaderboard_submit(args: argparse.Namespace) -> int:
    from leaderboard.board import submit
    from leaderboard.submission import describe

    report, entry = submit(args.submission, args.release, args.board, recognizer=_recognizer())
    print(describe(report))
    if entry is None:
        raise InputError(f"submission rejected ({len(report.problems)} problem{'s' * (len(report.problems) != 1)}, "
                         "listed above); the leaderboard is unchanged", file=args.submission)
    print(f"added to the leaderboard: {entry}")
    return 0


def _leaderboard_build(args: argparse.Namespace) -> int:
    from leaderboard.site import build_site

    from .outputs import check_output

    if args.bootstrap < 100:
        raise InputError(f"--bootstrap must be at least 100 resamples, got {args.bootstrap}")
    out = Path(args.out)
    if not (out.is_dir() and not any(out.iterdir())):  # an empty folder made for it is fine
        check_output(out, overwrite=args.overwrite, reads=[args.board], what="site folder")
    print(f"leaderboard site: {build_site(args.board, args.out, bootstrap=args.bootstrap, seed=args.seed)}")
    return 0


# ---------------------------------------------------------------------------------------------- info

def _personas(args: argparse.Namespace) -> int:
    from .agents.personas import get_persona, persona_names

    for held_out in (False, True):
        print("held-out personas (transfer split only):" if held_out else "training personas:")
        for name in persona_names(held_out=held_out):
            p = get_persona(name)
            print(f"  {name:<15} power {p.power:.2f}  trust {p.trust:.2f}  e {p.concession_exponent:.1f}  "
                  f"{p.description}")
    return 0


def _recognizer_eval(args: argparse.Namespace) -> int:
    recognizer = _recognizer()
    print("Emotion recognizer accuracy by source (28 labels; family = the 6 emotion families):")
    for source, m in recognizer.metrics.items():
        print(f"  {source:<26} n={m['n']:<6} accuracy {m['accuracy']:.1%}   family accuracy {m['family_accuracy']:.1%}")
    return 0


# ---------------------------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emoneg", description="EmoNeg-Bench: emotion as a strategic action in negotiation.",
        epilog="examples:\n  emoneg play --domain debt --scenario debt-0001 --persona pushover --emotion anger\n"
               "  emoneg sweep --episodes 8\n  emoneg scenarios generate --domain student --count 100 --out s.parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scenarios = commands.add_parser("scenarios", help="generate or import scenario tables",
                                    description="Generate or import scenario tables.",
                                    epilog="examples:\n  emoneg scenarios generate --domain debt --count 100 --out debt.parquet\n"
                                           "  emoneg scenarios import --domain debt published.csv --out debt.parquet\n",
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    scenario_commands = scenarios.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")
    generate = _command(scenario_commands, "generate", "write a seeded scenario set for one domain",
                        "  emoneg scenarios generate --domain debt --count 100 --seed 0 --out debt.parquet\n"
                        "  emoneg scenarios generate --domain student --count 20 --out student.csv\n",
                        _scenarios_generate)
    generate.add_argument("--domain", required=True, help="debt | disaster | hospital | student")
    generate.add_argument("--count", type=int, default=100, help="number of scenarios (default 100)")
    generate.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    generate.add_argument("--out", required=True, help="output file, .parquet or .csv")
    generate.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    imp = _command(scenario_commands, "import", "import a published (EmoMAS/EmoDistill-format) scenario CSV",
                   "  emoneg scenarios import --domain debt credit_recovery_scenarios.csv --out debt.parquet\n"
                   "  (rows that cannot be proven right are rejected; reasons go to OUT.rejections.csv)\n",
                   _scenarios_import)
    imp.add_argument("--domain", required=True, help="debt | disaster | hospital | student")
    imp.add_argument("csv", help="the published CSV file")
    imp.add_argument("--out", required=True, help="output file, .parquet or .csv (its reports go next to it: "
                                                  "OUT.repairs.csv, OUT.rejections.csv)")
    imp.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    play = _command(commands, "play", "play one negotiation and print the transcript",
                    "  emoneg play --domain debt --scenario debt-0003 --persona pushover --emotion anger\n"
                    "  emoneg play --domain student --scenario student-0010 --persona skeptic --schedule random "
                    "--seed 4 --json\n"
                    "  emoneg play --domain hospital --scenario hospital-0002 --persona empath --focal lm:smollm2 "
                    "--emotion sadness\n"
                    "  emoneg play --domain debt --scenario debt-0001 --focal lm:smollm2 --counterparty lm:smollm2 "
                    "--schedule none\n"
                    "  emoneg play --domain debt --scenario debt-0001 --persona boulware "
                    "--focal 'lm:http://127.0.0.1:8000/v1?model=my-model'\n"
                    "  emoneg play --domain debt --scenario debt-0002 --persona skeptic --focal lm:llama-server:smollm2 "
                    "  # after make setup-server\n", _play)
    play.add_argument("--domain", required=True)
    play.add_argument("--scenario", required=True, help="scenario id, e.g. debt-0001")
    play.add_argument("--persona", help="counterparty persona (see `emoneg personas`)")
    play.add_argument("--focal", default="teacher", help="teacher | persona:NAME | lm:MODEL (default teacher); "
                                                         "MODEL = smollm2, a model folder, an endpoint URL or "
                                                         "llama-server:smollm2")
    play.add_argument("--counterparty", help="persona:NAME | lm:MODEL | teacher (default: --persona)")
    which = play.add_mutually_exclusive_group()
    which.add_argument("--emotion", help="the focal agent shows this emotion throughout")
    which.add_argument("--schedule", default="random",
                       help="random | random:anger+joy | given:anger+neutral+… | none (emotion-free; default random)")
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--scenarios", help="scenario file to look the id up in (default: the generated set)")
    play.add_argument("--scenario-seed", type=int, default=0, help="seed of the generated set (default 0)")
    play.add_argument("--max-turns", type=int, default=30)
    play.add_argument("--protocol", default="structured", choices=("structured", "text"),
                      help="how language-model agents state their moves: one JSON object per turn, enforced while "
                           "decoding (structured, the default) or free text read by the offer parser")
    play.add_argument("--json", action="store_true", help="print the episode as JSON")
    add_http_options(play)

    sweep = _command(commands, "sweep", "fixed-emotion sweep: per-emotion outcome table",
                     "  emoneg sweep --episodes 8\n"
                     "  emoneg sweep --domain debt --emotions anger,neutral,sadness --personas pushover\n", _sweep)
    sweep.add_argument("--domain", action="append", help="restrict to a domain (repeatable)")
    sweep.add_argument("--emotions", help="comma-separated emotions (default all 28)")
    sweep.add_argument("--personas", help="comma-separated personas (default the training personas)")
    sweep.add_argument("--episodes", type=int, default=8, help="episodes per persona, domain and emotion")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    build = _command(commands, "build", "build a versioned dataset release from a builder config",
                     "  emoneg build builders/configs/emoneg-v1.yaml --out releases/\n"
                     "  emoneg build builders/configs/emoneg-v1.yaml --profile small --out releases/\n"
                     "  emoneg build builders/configs/emoneg-v1.yaml --out parts/ --num-shards 4 --shard 0\n",
                     _build)
    build.add_argument("config", help="builder config (YAML)")
    build.add_argument("--out", required=True, help="folder the release folder is created in")
    build.add_argument("--profile", help="a profile defined in the config, e.g. small")
    build.add_argument("--num-shards", type=int, default=1, help="split the build into this many parts")
    build.add_argument("--shard", type=int, default=0, help="which part to build (0-based)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    add_http_options(build)  # a builder config's teacher.model may be an endpoint

    merge = _command(commands, "merge", "combine the parts of a sharded build into the release",
                     "  emoneg merge parts/emoneg-trajectories-v2.0.0.part-* --out releases/\n", _merge)
    merge.add_argument("parts", nargs="+", help="part folders written by `emoneg build --num-shards`")
    merge.add_argument("--out", required=True, help="folder the release folder is created in")
    merge.add_argument("--source", help="name of the builder config file, recorded in the manifest")

    validate = _command(commands, "validate-release", "check a release: card vs files, hashes, features, splits",
                        "  emoneg validate-release releases/emoneg-trajectories-v2.0.0\n"
                        "  (prints one line per problem and exits 1 when there is any)\n", _validate_release)
    validate.add_argument("release", help="release folder")

    publish = _command(commands, "publish", "upload a release to the Hugging Face Hub and tag its version",
                       "  emoneg publish releases/emoneg-trajectories-v2.0.0 --repo-id my-org/emoneg --dry-run\n"
                       "  HF_TOKEN=... emoneg publish releases/emoneg-trajectories-v2.0.0 --repo-id my-org/emoneg\n",
                       _publish)
    publish.add_argument("release", help="release folder")
    publish.add_argument("--repo-id", required=True, help="dataset repository, ORG/NAME")
    publish.add_argument("--dry-run", action="store_true", help="validate and show the plan; no network")
    publish.add_argument("--private", action="store_true", help="create the repository as private")

    score = _command(commands, "score", "score evaluation results (episodes-schema Parquet) into a table",
                     "  emoneg score results/*.parquet --table main\n"
                     "  emoneg score runs/a.parquet runs/b.parquet --table metrics --format csv --bootstrap 10000 "
                     "--seed 0\n"
                     "  emoneg score releases/emoneg-trajectories-v2.0.0/data/episodes/*.parquet --table emotions\n"
                     "  emoneg score results/*__test*.parquet --table headroom\n"
                     "  emoneg score results/*.parquet --table ablation --pair iql-teacher:best-fixed-teacher\n",
                     _score)
    score.add_argument("results", nargs="+", help="Parquet files in the episodes schema")
    score.add_argument("--table", default="main",
                       choices=("main", "metrics", "emotions", "transfer", "ablation", "tournament", "headroom"))
    score.add_argument("--format", default="md", choices=("md", "csv", "json", "latex"))
    score.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples (default 10000)")
    score.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    score.add_argument("--by", choices=("split", "domain", "persona", "counterparty_agent"),
                       help="transfer table columns (default split)")
    score.add_argument("--pair", action="append", metavar="POLICY:BASELINE",
                       help="ablation: compare these two policies over shared tasks (repeatable; default the paper's "
                            "pairs present)")
    score.add_argument("--random", help="headroom: the random-emotion policy (default teacher)")
    score.add_argument("--reference", help="headroom: the upper reference (default persona-best-fixed-teacher)")

    board = commands.add_parser("leaderboard", help="validate and add submissions, build the leaderboard site",
                                description="Leaderboard submissions: validation and replay verification.",
                                epilog="examples:\n  emoneg leaderboard validate my-submission/ "
                                       "--release releases/emoneg-trajectories-v2.0.0\n",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    board_commands = board.add_subparsers(dest="board_command", required=True, metavar="ACTION")
    check = _command(board_commands, "validate",
                     "check a submission folder and replay every episode against the official counterparties",
                     "  emoneg leaderboard validate my-submission/ --release releases/emoneg-trajectories-v2.0.0\n"
                     "  (a submission is submission.yaml + episodes.parquet on the release's test tasks; exit 2 "
                     "when rejected)\n", _leaderboard_validate)
    check.add_argument("submission", help="submission folder")
    check.add_argument("--release", required=True, help="the release folder the submission was evaluated on")
    add = _command(board_commands, "submit", "validate and replay a submission, then add it to the leaderboard",
                   "  emoneg leaderboard submit my-submission/ --release releases/emoneg-trajectories-v2.0.0\n"
                   "  (writes leaderboard/submissions/NAME/: the replayed episodes as Parquet + entry.json)\n",
                   _leaderboard_submit)
    add.add_argument("submission", help="submission folder")
    add.add_argument("--release", required=True, help="the release folder the submission was evaluated on")
    add.add_argument("--board", default="leaderboard/submissions", help="leaderboard folder (default %(default)s)")
    site = _command(board_commands, "build", "rebuild the static leaderboard site from the accepted entries",
                    "  emoneg leaderboard build --out site/\n"
                    "  (writes site/index.html, site/entries/NAME.html and site/plots/*.svg; open index.html "
                    "in a browser, no server needed)\n", _leaderboard_build)
    site.add_argument("--board", default="leaderboard/submissions", help="leaderboard folder (default %(default)s)")
    site.add_argument("--out", required=True, help="site folder (new or empty; an earlier site build there is "
                                                   "replaced only with --overwrite)")
    site.add_argument("--overwrite", action="store_true", help="replace an earlier site build in --out")
    site.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples (default 10000)")
    site.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")

    from baselines.commands import register as register_baselines  # light: trainers import torch when run

    register_baselines(commands, _command)

    _command(commands, "personas", "list the counterparty personas", "  emoneg personas\n", _personas)
    _command(commands, "recognizer", "report the emotion recognizer's held-out accuracy",
             "  emoneg recognizer\n", _recognizer_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with using_limits(limits_from_args(args)):
            return args.handler(args)
    except EmoNegError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as error:  # disk full, permissions…: say which file; builds can be resumed
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
