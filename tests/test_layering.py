"""DESIGN.md section 1: the core never imports builders/baselines/leaderboard, the leaderboard never
imports baselines, and heavy ML libraries load only when used."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "sklearn")


def imported_packages(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_core_never_imports_the_packages_built_on_it_except_lazily_in_the_cli():
    offenders = set()
    for path in (ROOT / "emoneg_bench").rglob("*.py"):
        if path.name == "cli.py":  # the front door dispatches to them inside command handlers
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] in ("builders", "baselines", "leaderboard"):
                    offenders.add(f"{path.name}: {node.module}")
    assert offenders == set()


def test_the_leaderboard_never_imports_baselines():
    assert "baselines" not in imported_packages("leaderboard")


def test_importing_the_toolkit_loads_no_heavy_ml_library():
    modules = ("emoneg_bench", "emoneg_bench.cli", "emoneg_bench.engine", "emoneg_bench.agents.lm",
               "emoneg_bench.backends", "builders.build", "leaderboard.scoring", "leaderboard.submission")
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
