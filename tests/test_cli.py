import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from emoneg_bench.cli import build_parser, main
from emoneg_bench.scenario_io import read_scenarios

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference_data" / "credit_recovery_scenarios.csv"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_writes_parquet_that_reads_back_to_the_same_scenarios(tmp_path, capsys):
    from emoneg_bench.domains import generate_scenarios

    out = tmp_path / "student.parquet"
    code, stdout, _ = run(capsys, "scenarios", "generate", "--domain", "student", "--count", "12", "--seed", "3",
                          "--out", str(out))
    assert code == 0 and "wrote 12 student scenarios" in stdout
    assert read_scenarios(out) == generate_scenarios("student", 12, seed=3)
    assert pq.read_table(out).column("scenario_id").to_pylist()[0] == "student-0001"


def test_generate_writes_csv_by_extension(tmp_path, capsys):
    out = tmp_path / "debt.csv"
    assert run(capsys, "scenarios", "generate", "--domain", "debt", "--count", "5", "--out", str(out))[0] == 0
    assert out.read_text().splitlines()[0].startswith('"scenario_id","domain","focal_anchor"')
    assert len(read_scenarios(out)) == 5


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared reference data not present")
def test_import_of_the_reference_debt_csv_reports_counts(tmp_path, capsys):
    out = tmp_path / "debt.parquet"
    code, stdout, _ = run(capsys, "scenarios", "import", "--domain", "debt", str(REFERENCE), "--out", str(out))
    assert code == 0
    assert "imported 100 (repaired 0), rejected 0" in stdout
    scenarios = read_scenarios(out)
    assert len(scenarios) == 100 and (scenarios[0].focal_anchor, scenarios[0].counterparty_anchor) == (12, 159)
    assert not list(tmp_path.glob("*.rejections.csv"))


def test_import_writes_rejection_reasons_next_to_the_output(tmp_path, capsys):
    source = tmp_path / "disaster.csv"
    source.write_text(
        "Case_ID,Disaster_Type,Survivor_Condition,Estimated_Survivor_Endurance(minutes),Rescue_Team_ETA(minutes),"
        "Critical_Needs,Key_Negotiation_Argument_By_RoboDog\n"
        "D1,Earthquake,Trapped but stable,60,180,Water,Debris must be stabilised\n"
        "D2,Flood,Cold,Variable,200,Warmth,Pumps are coming\n"
        "D3,Landslide,Leg injury,90,240,Water, blanket and light,Gear is on its way\n")
    out = tmp_path / "disaster.parquet"
    code, stdout, _ = run(capsys, "scenarios", "import", "--domain", "disaster", str(source), "--out", str(out))
    assert code == 0 and "imported 2 (repaired 1), rejected 1" in stdout
    rejections = (tmp_path / "disaster.rejections.csv").read_text()
    assert "D2" in rejections and "Variable" in rejections
    assert "Critical_Needs" in (tmp_path / "disaster.repairs.csv").read_text()
    assert [s.critical_needs for s in read_scenarios(out)] == ["Water", "Water, blanket and light"]


def test_play_prints_a_readable_transcript(capsys):
    code, out, _ = run(capsys, "play", "--domain", "debt", "--scenario", "debt-0003", "--persona", "pushover",
                       "--emotion", "anger", "--seed", "1")
    assert code == 0
    assert out.startswith("debt-0003 · CRAD")
    assert " 1. creditor [offer " in out and "declared anger → perceived" in out and "judge " in out
    assert "ending: " in out and "focal utility" in out


def test_play_json_is_the_episode(capsys):
    code, out, _ = run(capsys, "play", "--domain", "hospital", "--scenario", "hospital-0010", "--persona", "empath",
                       "--schedule", "random", "--seed", "4", "--json")
    episode = json.loads(out)
    assert code == 0 and episode["scenario"]["scenario_id"] == "hospital-0010"
    assert episode["turns"][0]["role"] == "focal" and episode["turns"][0]["judge_score"] is not None
    assert episode["outcome"]["ending"] in ("agreement", "walkaway", "turn_limit", "breakdown")


def test_play_is_deterministic(capsys):
    argv = ("play", "--domain", "student", "--scenario", "student-0002", "--persona", "boulware", "--seed", "7")
    assert run(capsys, *argv)[1] == run(capsys, *argv)[1]


def test_sweep_prints_a_per_emotion_table(capsys):
    code, out, _ = run(capsys, "sweep", "--domain", "debt", "--domain", "student", "--emotions", "anger,neutral",
                       "--personas", "pushover", "--episodes", "4", "--quiet")
    assert code == 0
    lines = out.splitlines()
    assert "debt" in lines[1] and "student" in lines[1]
    assert {line.split()[0] for line in lines[4:]} == {"anger", "neutral"}


@pytest.mark.parametrize("argv, message", [
    (("scenarios", "generate", "--domain", "loans", "--out", "x.parquet"), "unknown domain 'loans'"),
    (("scenarios", "generate", "--domain", "debt", "--count", "0", "--out", "x.parquet"), "--count must be at least 1"),
    (("scenarios", "generate", "--domain", "debt", "--out", "x.json"), "unsupported output format '.json'"),
    (("play", "--domain", "debt", "--scenario", "debt-0001", "--persona", "nobody"), "unknown persona 'nobody'"),
    (("play", "--domain", "debt", "--scenario", "debt-0001", "--persona", "pushover", "--emotion", "rage"),
     "unknown emotion 'rage'"),
    (("play", "--domain", "debt", "--scenario", "debt-9999", "--persona", "pushover"), "no debt scenario 'debt-9999'"),
    (("sweep", "--emotions", "anger,glee", "--quiet"), "unknown emotion 'glee'"),
])
def test_bad_input_is_one_clear_error_line_and_nothing_is_written(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_import_of_a_malformed_header_writes_nothing(tmp_path, capsys):
    source = tmp_path / "student.csv"
    source.write_text("Case_ID,Age\nS1,20\n")
    code, _, err = run(capsys, "scenarios", "import", "--domain", "student", str(source), "--out",
                       str(tmp_path / "out.parquet"))
    assert code == 2 and str(source) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.csv"]


def test_every_command_has_help_with_examples():
    parser = build_parser()
    subparsers = parser._subparsers._group_actions[0].choices
    for name, sub in subparsers.items():
        assert "examples:" in sub.format_help(), name
        if name in ("scenarios", "leaderboard"):
            for action in sub._subparsers._group_actions[0].choices.values():
                assert "examples:" in action.format_help()
        else:
            assert "examples:" in sub.format_help(), name


def test_console_script_is_installed():
    assert shutil.which("emoneg") or (Path(__file__).parents[1] / ".venv" / "bin" / "emoneg").exists()


def test_score_prints_the_main_table_of_a_release(tmp_path, capsys, recognizer):
    from builders.build import build
    from builders.config import load_config

    release = build(load_config("builders/configs/emoneg-v1.yaml", "small"), tmp_path, progress=False)
    files = sorted(str(p) for p in (release / "data" / "episodes").glob("*.parquet"))
    code, out, _ = run(capsys, "score", *files, "--table", "main", "--bootstrap", "500", "--format", "csv")
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.startswith("rank,policy,") and len(rows) == 6  # teacher:random + 5 fixed emotions
    assert any(row.split(",")[1] == "teacher:random" for row in rows)
    assert run(capsys, "score", str(tmp_path / "missing.parquet"))[0] == 2
