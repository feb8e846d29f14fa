"""LoRA-SFT, JPO, the policy registry and the evaluation runner, on the small release with a tiny
model (real TRL/PEFT training, real datasets.load_dataset, real Parquet)."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from baselines.data import sft_selection, top_fraction, without_emotion
from baselines.evaluate import EvalRequest, evaluate, pick_tasks
from baselines.jpo import JPOSettings, jpo_loss, train_jpo
from baselines.policies import Runs, make_policy, policy_names
from baselines.sft import SFTSettings, sft_trainer, train_sft
from baselines.training import mixed_precision, on_gpu, sampling_args
from emoneg_bench.cli import main
from emoneg_bench.emotions import GOEMOTIONS, emotion_instruction
from emoneg_bench.errors import EmoNegError, InputError, UnknownNameError
from emoneg_bench.release import load_release_tasks
from emoneg_bench.schema import features

FAST_SFT = SFTSettings(max_steps=6, learning_rate=5e-3, logging_steps=1, save_steps=3, batch_size=2)


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, small_release, tiny_model):
    out = tmp_path_factory.mktemp("sft")
    return out, train_sft(small_release, out, model=str(tiny_model), settings=FAST_SFT, progress=False)


# ---- data selection --------------------------------------------------------------------------------

def test_sft_keeps_the_top_decile_of_focal_turns_by_advantage(small_release):
    selection = sft_selection(small_release)
    assert selection.advantage_source == "release:monte-carlo"
    assert len(selection.rows) == math.ceil(0.10 * selection.available)
    kept = sorted(r["advantage"] for r in selection.rows)
    from datasets import load_dataset

    every = sorted(load_dataset(str(small_release), "sft", split="train")["advantage"], reverse=True)
    assert kept[0] >= every[len(selection.rows) - 1] - 1e-6  # nothing below the cut got in
    assert all(m[-1]["role"] == "assistant" for m in (r["messages"] for r in selection.rows))


def test_top_fraction_breaks_ties_by_episode_and_turn():
    rows = {"episode_id": ["b", "a", "c", "a"], "turn": [0, 2, 0, 0]}
    assert top_fraction(rows, [1.0, 1.0, 0.5, 1.0], 0.5) == [1, 3]  # ("a",0) and ("a",2) before ("b",0)
    with pytest.raises(InputError, match="fraction"):
        top_fraction(rows, [1.0] * 4, 0.0)


def test_emotion_free_rows_are_the_same_turns_without_the_instruction(small_release):
    with_emotion = sft_selection(small_release, top_k=0.05)
    without = sft_selection(small_release, top_k=0.05, emotion=False)
    assert [r["advantage"] for r in with_emotion.rows] == [r["advantage"] for r in without.rows]
    for a, b in zip(with_emotion.rows, without.rows):
        instruction = emotion_instruction(a["emotion"])
        last_user = [m for m in a["messages"] if m["role"] == "user"][-1]["content"]
        assert last_user.rstrip().endswith(instruction) or instruction in last_user
        assert not any(i in m["content"] for m in b["messages"] if m["role"] == "user"
                       for i in map(emotion_instruction, GOEMOTIONS))
        assert [m["role"] for m in a["messages"]] == [m["role"] for m in b["messages"]]
        assert [m for m in a["messages"] if m["role"] != "user"] == [m for m in b["messages"] if m["role"] != "user"]


def test_removing_an_instruction_that_is_not_there_is_a_clear_error():
    with pytest.raises(InputError, match="does not carry the 'anger' instruction"):
        without_emotion([{"role": "system", "content": "plain"}, {"role": "user", "content": "x"}], "anger")


def test_unknown_domain_and_a_manifest_without_a_build_are_clear_errors(small_release, tmp_path):
    with pytest.raises(InputError, match="unknown domain 'mars'"):
        sft_selection(small_release, domain="mars")
    fake = tmp_path / "fake"
    (fake / "data" / "episodes").mkdir(parents=True)
    (fake / "MANIFEST.json").write_text(json.dumps({"version": "2.0.0", "release": "fake"}))
    with pytest.raises(InputError, match="has no builder_config.max_turns"):
        sft_selection(fake)
    (fake / "MANIFEST.json").write_text(json.dumps({"version": "3.0.0", "release": "fake"}))
    with pytest.raises(InputError, match="version 3.0.0; this toolkit reads version 2.x"):
        sft_selection(fake)


# ---- SFT -------------------------------------------------------------------------------------------

def test_sft_trains_a_reloadable_adapter_and_the_loss_moves(sft_run, small_release, tiny_model):
    out, run = sft_run
    assert run["steps"] == 6 and run["kind"] == "sft" and run["emotion"] is True
    assert run["losses"][-1] < run["losses"][0] - 0.05
    assert run["release"] == "emoneg-trajectories-small-v2.0.0"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "training.json").read_text())["adapter_sha256"] == run["adapter_sha256"]
    from emoneg_bench.backends import load_backend
    from emoneg_bench.backends.base import SamplingParams

    tuned = load_backend(f"{tiny_model}+adapter={out / 'adapter'}")
    base = load_backend(str(tiny_model))
    prompt = [[{"role": "system", "content": "You are the creditor."}, {"role": "user", "content": "Offer?"}]]
    params = SamplingParams(max_new_tokens=12)
    assert tuned.adapter_sha256 == run["adapter_sha256"]
    assert tuned.generate(prompt, params)[0].text != base.generate(prompt, params)[0].text


class Crash(Exception):
    pass


def crash_after_checkpoint(step: int):
    from transformers import TrainerCallback

    class CrashAfter(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Crash(f"killed after checkpoint {step}")
    return CrashAfter()


def test_an_interrupted_sft_run_resumes_to_the_same_adapter(tmp_path, small_release, tiny_model, sft_run):
    out = tmp_path / "sft"
    with pytest.raises(Crash):
        train_sft(small_release, out, model=str(tiny_model), settings=FAST_SFT, progress=False,
                  callbacks=[crash_after_checkpoint(3)])
    assert (out / "checkpoints" / "checkpoint-3").is_dir() and not (out / "adapter").exists()
    resumed = train_sft(small_release, out, model=str(tiny_model), settings=FAST_SFT, progress=False)
    assert resumed["steps"] == 6
    if not on_gpu():  # CUDA's bf16 kernels are not bit-reproducible (an H200 gave another adapter): same step only
        assert resumed["adapter_sha256"] == sft_run[1]["adapter_sha256"]


def test_sft_steps_are_chosen_on_validation_loss(tmp_path, small_release, tiny_model):
    from dataclasses import replace

    from baselines.iql import IQLConfig, train_iql

    # ranked by an IQL critic, as reproduce does: the validation turns are matched to validation transitions
    iql = train_iql(small_release, tmp_path / "iql", config=IQLConfig(steps=20, hidden=(8,), log_every=10,
                                                                       checkpoint_every=20),
                    progress=False, temperature=0)
    settings = replace(FAST_SFT, eval_steps=2, eval_examples=4)
    run = train_sft(small_release, tmp_path / "sft", model=str(tiny_model), iql=iql, settings=settings,
                    progress=False)
    assert run["advantage_source"] == "iql:iql"
    losses = {int(step): loss for step, loss in run["validation_losses"].items()}
    assert sorted(losses) == [2, 4, 6] and run["validation_examples"] == 4 and run["chosen_on"] == "validation"
    assert losses[run["chosen_step"]] == min(losses.values())
    # the kept adapter is the chosen step's checkpoint, not the last step's
    import json

    state = json.loads((tmp_path / "sft" / "checkpoints" / f"checkpoint-{settings.max_steps}" / "trainer_state.json")
                       .read_text())
    assert state["best_model_checkpoint"].endswith(f"checkpoint-{run['chosen_step']}")


def test_the_labelled_positions_loss_equals_trls_own(tmp_path, small_release, tiny_model):
    """Our SFT loss forms logits only where a label is; TRL's scores every position. Same batch, same
    adapter: the same loss, entropy and token accuracy."""
    import torch
    from trl import SFTTrainer

    trainer, _, _ = sft_trainer(small_release, tmp_path, model=str(tiny_model), iql=None, domain="all",
                                emotion=True, role="focal", settings=replace(FAST_SFT, batch_size=4),
                                progress=False, callbacks=None)
    trainer.model.eval()  # no LoRA dropout: both losses see the same network
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    labelled = batch["labels"][:, 1:].ne(-100)
    assert 0 < int(labelled.sum()) < labelled.numel() // 4  # a few assistant tokens in long transcripts
    with torch.no_grad():
        ours = float(trainer.compute_loss(trainer.model, dict(batch)))
        theirs = float(SFTTrainer.compute_loss(trainer, trainer.model, dict(batch)))
    assert ours == pytest.approx(theirs, rel=1e-5)
    metrics = trainer._metrics["eval"]
    assert metrics["entropy"][0] == pytest.approx(metrics["entropy"][1], rel=1e-4)
    assert metrics["mean_token_accuracy"][0] == pytest.approx(metrics["mean_token_accuracy"][1], abs=1e-9)


def test_length_grouped_batches_carry_less_padding(tmp_path):
    """The trainers' default sampler (a real ``Trainer`` dataloader): batches of similar length, every example
    once, a seeded order; plain shuffling pads far more."""
    import random

    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    draw = random.Random(0)
    lengths = [draw.randint(50, 1400) for _ in range(400)]
    dataset = Dataset.from_list([{"input_ids": [1] * n, "index": i} for i, n in enumerate(lengths)])

    def batches(grouped: bool) -> list[list[int]]:
        args = TrainingArguments(output_dir=str(tmp_path / str(grouped)), per_device_train_batch_size=4, use_cpu=True,
                                 report_to=[], seed=0, data_seed=0, remove_unused_columns=False,
                                 **sampling_args(grouped))
        trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=dataset,
                          data_collator=lambda rows: torch.tensor([row["index"] for row in rows]))
        return [batch.tolist() for batch in trainer.get_train_dataloader()]

    def padding(drawn: list[list[int]]) -> float:
        return sum(max(lengths[i] for i in b) * len(b) for b in drawn) / sum(lengths[i] for b in drawn for i in b)

    grouped, shuffled = batches(True), batches(False)
    assert sorted(i for b in grouped for i in b) == list(range(400))
    assert grouped == batches(True)
    assert padding(grouped) < 1.05 < 1.4 < padding(shuffled)


def test_sft_and_jpo_put_the_loss_on_the_logged_move_only(tiny_model):
    """A prompt holds earlier moves as assistant turns; only the final one is the response."""
    from transformers import AutoTokenizer

    from baselines.jpo import response_mask

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "open"},
                {"role": "assistant", "content": "EARLIER MOVE"}, {"role": "user", "content": "their answer"},
                {"role": "assistant", "content": "LOGGED MOVE"}]
    ids, mask = response_mask(tokenizer, messages)
    response = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert "LOGGED MOVE" in response and "EARLIER" not in response and "their answer" not in response


# ---- JPO -------------------------------------------------------------------------------------------

def test_jpo_loss_is_the_clipped_surrogate_plus_k3():
    import torch

    mask = torch.tensor([[1.0, 1.0]])
    ref = torch.log(torch.tensor([[0.5, 0.5]]))
    same, stats = jpo_loss(ref.clone(), ref, mask, torch.tensor([2.0]), 0.2, 0.04)
    assert same.item() == pytest.approx(-2.0) and stats["kl"].item() == pytest.approx(0.0)
    # ratio e^{ln 2} = 2 with a positive advantage is clipped at 1.2; k3 of δ = −ln√2 per token
    doubled = ref + torch.log(torch.tensor(2.0)) / 2
    loss, stats = jpo_loss(doubled, ref, mask, torch.tensor([1.0]), 0.2, 0.04)
    delta = -math.log(2) / 2
    assert stats["ratio"].item() == pytest.approx(2.0)
    assert loss.item() == pytest.approx(-1.2 + 0.04 * (math.exp(delta) - delta - 1), rel=1e-5)
    # with a negative advantage the unclipped (worse) term is kept
    loss, _ = jpo_loss(doubled, ref, mask, torch.tensor([-1.0]), 0.2, 0.04)
    assert loss.item() == pytest.approx(2.0 + 0.04 * (math.exp(delta) - delta - 1), rel=1e-5)
    # masked-out tokens do not count
    loss, _ = jpo_loss(ref + torch.tensor([[0.0, 5.0]]), ref, torch.tensor([[1.0, 0.0]]), torch.tensor([1.0]), 0.2, 0.0)
    assert loss.item() == pytest.approx(-1.0)


def test_response_log_probs_of_a_left_padded_batch_equal_each_row_alone(tiny_model):
    """JPO forms logits only over the batch's response window; each row's values must be what the row
    gives alone with full logits (padding and the window change nothing)."""
    import torch
    from transformers import AutoModelForCausalLM

    from baselines.jpo import _trainer_class, response_window, token_logps

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    rows = [{"input_ids": [5, 9, 11, 13, 17, 19, 23], "completion_mask": [0, 0, 0, 0, 1, 1, 0]},
            {"input_ids": [7, 29, 31, 37], "completion_mask": [0, 1, 1, 0]}]
    for row in rows:
        row |= {"attention_mask": [1] * len(row["input_ids"]), "advantage": 0.0}
    _, collate = _trainer_class()
    batch = collate(0)(rows)
    keep = response_window(batch["completion_mask"])
    assert keep == 3 and batch["input_ids"][1].tolist() == [0, 0, 0, 7, 29, 31, 37]
    with torch.no_grad():
        windowed = token_logps(model, batch["input_ids"], batch["attention_mask"], keep)
        for i, row in enumerate(rows):
            ids = torch.tensor([row["input_ids"]])
            full = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            alone = full.gather(1, ids[0, 1:, None]).squeeze(-1)[-keep:]
            assert torch.allclose(windowed[i], alone, atol=1e-5)


def test_jpo_refines_the_sft_adapter(tmp_path, small_release, sft_run):
    sft_out, sft = sft_run
    settings = JPOSettings(max_steps=4, learning_rate=5e-3, logging_steps=1, max_examples=16, batch_size=4)
    run = train_jpo(small_release, sft_out, tmp_path / "jpo", settings=settings, progress=False)
    assert run["kind"] == "jpo" and run["steps"] == 4 and run["sft_adapter_sha256"] == sft["adapter_sha256"]
    assert run["adapter_sha256"] != sft["adapter_sha256"]
    first = next(e for e in run["log_history"] if "kl" in e)
    later = [e for e in run["log_history"] if "kl" in e][-1]
    # starts at the frozen reference (dropout off); under bf16 autocast to rounding (an H200 gave 1.0023)
    assert first["ratio"] == pytest.approx(1.0, abs=1e-2 if mixed_precision() else 1e-4)
    assert later["kl"] > first["kl"]  # and moves away from it
    assert (tmp_path / "jpo" / "adapter" / "adapter_config.json").is_file()


def test_jpo_steps_are_chosen_on_the_validation_objective(tmp_path, small_release, sft_run):
    from baselines.training import ADAPTER
    from emoneg_bench.hashing import weights_sha256

    sft_out, sft = sft_run
    settings = JPOSettings(max_steps=4, learning_rate=5e-3, logging_steps=1, max_examples=16, batch_size=4,
                           eval_steps=2, eval_examples=8)
    run = train_jpo(small_release, sft_out, tmp_path / "jpo", settings=settings, progress=False)
    losses = {int(step): loss for step, loss in run["validation_losses"].items()}
    assert sorted(losses) == [0, 2, 4] and run["validation_examples"] == 8 and run["chosen_on"] == "validation"
    assert losses[run["chosen_step"]] == min(losses.values())
    # at step 0 the policy is the reference: ratio 1, no KL, so the objective is −mean(advantage) of those turns
    # (to bf16 rounding where training autocasts: the reference log-probs are computed in float32)
    from baselines.data import jpo_selection

    held = jpo_selection(small_release, max_examples=8, split="validation").rows
    assert losses[0] == pytest.approx(-sum(r["advantage"] for r in held) / len(held),
                                      abs=2e-2 if mixed_precision() else 1e-4)
    kept = weights_sha256(tmp_path / "jpo" / ADAPTER)
    assert (kept == sft["adapter_sha256"]) == (run["chosen_step"] == 0) and kept == run["adapter_sha256"]
    # no evaluation batch leaks into the training log's statistics
    assert all("kl" not in e for e in run["log_history"] if "eval_loss" in e)


def test_jpo_refuses_to_start_from_an_emotion_free_run(tmp_path, small_release):
    (tmp_path / "free").mkdir()
    (tmp_path / "free" / "training.json").write_text(json.dumps({"kind": "emotion-free-sft"}))
    with pytest.raises(InputError, match="emotion-conditioned SFT run"):
        train_jpo(small_release, tmp_path / "free", tmp_path / "jpo", progress=False)


# ---- policies and evaluation -----------------------------------------------------------------------

def test_every_paper_policy_is_registered():
    assert {"vanilla-slm", "vanilla-llm", "random-emotion", "fixed-<emotion>", "iql-only", "emodistill-sft",
            "emodistill", "emotion-free-sft", "teacher"} <= set(policy_names())


def test_unknown_policies_and_missing_runs_are_clear_errors():
    with pytest.raises(UnknownNameError, match="unknown policy 'magic'"):
        make_policy("magic")
    with pytest.raises(UnknownNameError, match="unknown emotion 'zeal'"):
        make_policy("fixed-zeal")
    with pytest.raises(InputError, match="needs a trained iql run"):
        make_policy("emodistill", Runs(sft=None))
    with pytest.raises(InputError, match="needs --llm"):
        make_policy("vanilla-llm")


def test_evenly_spaced_task_subsets_cover_every_domain(small_release):
    tasks = load_release_tasks(small_release, "test")
    picked = pick_tasks(tasks, "all", 3)
    assert len(picked) == 12 and {t.scenario.domain for t in picked} == {"debt", "disaster", "hospital", "student"}
    assert len({t.persona for t in picked}) > 1
    assert pick_tasks(tasks, "debt", None) == [t for t in tasks if t.scenario.domain == "debt"]


def test_teacher_evaluation_writes_every_test_task_in_the_episodes_schema(tmp_path, small_release, recognizer):
    out = tmp_path / "teacher.parquet"
    summary = evaluate(EvalRequest("teacher", small_release), out, progress=False, recognizer=recognizer)
    table = pq.read_table(out)
    tasks = load_release_tasks(small_release, "test")
    assert summary["episodes"] == table.num_rows == len(tasks)
    assert sorted(table["task_id"].to_pylist()) == sorted(t.task_id for t in tasks)
    for field in features("episodes").arrow_schema:
        assert table.schema.field(field.name).type == field.type
    assert set(table["focal_agent"].to_pylist()) == {"teacher"}
    assert summary["mean_utility"] == pytest.approx(sum(table["utility"].to_pylist()) / table.num_rows)
    again = tmp_path / "again.parquet"
    evaluate(EvalRequest("teacher", small_release), again, progress=False, recognizer=recognizer)
    assert again.read_bytes() == out.read_bytes()


def test_lm_policy_evaluation_records_model_and_adapter_hashes(tmp_path, small_release, tiny_model, sft_run,
                                                               recognizer):
    sft_out, sft = sft_run
    runs = Runs(model=str(tiny_model), emotion_free=sft_out)
    request = EvalRequest("emotion-free-sft", small_release, domain="debt", limit=2, max_new_tokens=12,
                          label="free[debt]")
    evaluate(request, tmp_path / "free.parquet", runs, progress=False, recognizer=recognizer)
    rows = pq.read_table(tmp_path / "free.parquet").to_pylist()
    assert len(rows) == 2 and {r["domain"] for r in rows} == {"debt"}
    assert {r["focal_agent"] for r in rows} == {"free[debt]"} and {r["policy"] for r in rows} == {"emotion-free-sft"}
    assert {r["adapter_sha256"] for r in rows} == {sft["adapter_sha256"]}
    assert all(r["model_sha256"] and r["counterparty"] == "persona" for r in rows)
    assert all(t["declared_emotion_name"] is None for r in rows for t in r["turns"] if t["role"] == "focal")


def test_eval_and_train_commands(tmp_path, small_release, tiny_model, capsys):
    out = tmp_path / "r.parquet"
    assert main(["eval", "--policy", "fixed-anger", "--model", str(tiny_model), "--release", str(small_release),
                 "--domain", "student", "--limit", "1", "--max-new-tokens", "8", "--out", str(out), "--quiet",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 1 and Path(summary["out"]) == out
    turns = pq.read_table(out).to_pylist()[0]["turns"]
    assert {t["declared_emotion_name"] for t in turns if t["role"] == "focal"} == {"anger"}
    assert main(["eval", "--policy", "emodistill", "--release", str(small_release), "--out", str(out)]) == 2
    assert "the results file already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["eval", "--policy", "emodistill", "--release", str(small_release), "--out", str(out),
                 "--overwrite"]) == 2
    assert "needs a trained iql run" in capsys.readouterr().err
    assert pq.read_table(out).to_pylist()[0]["turns"] == turns  # a refused run leaves the results as they were
    assert main(["train", "sft", "--release", str(small_release), "--model", str(tiny_model), "--max-steps", "1",
                 "--batch-size", "2", "--top-k", "0.01", "--no-emotion", "--out", str(tmp_path / "free"),
                 "--quiet"]) == 0
    assert "wrote emotion-free-sft adapter" in capsys.readouterr().out
    assert main(["train", "jpo", "--release", str(small_release), "--sft", str(tmp_path / "free"),
                 "--out", str(tmp_path / "jpo")]) == 2
    assert "emotion-conditioned SFT run" in capsys.readouterr().err


def test_eval_rejects_an_unknown_split(small_release):
    with pytest.raises(EmoNegError, match="unknown split 'train'"):
        evaluate(EvalRequest("teacher", small_release, split="train"), "x.parquet", progress=False)


# ---- reproduce -------------------------------------------------------------------------------------

def test_reproduce_runs_the_whole_pipeline_and_resumes(tmp_path, tiny_model):
    from dataclasses import replace

    from baselines.reproduce import PROFILES, reproduce

    profile = replace(PROFILES["quick"], name="test", iql_steps=30, sft_steps=2, jpo_steps=2, jpo_examples=8,
                      lm_limit=1, unseen_limit=1, max_new_tokens=200, bootstrap=200, bc_steps=30,
                      lm_policies=("vanilla-slm", "iql-only", "emodistill", "emotion-free-sft"),
                      unseen_policies=("emodistill",))
    lines = []
    summary = reproduce(profile, tmp_path / "run", model=str(tiny_model), progress=False, log=lines.append)
    out = tmp_path / "run"
    for folder in ("iql", "iql-debt", "sft", "emotion-free-sft", "jpo", "best-fixed", "bc-top"):
        assert (out / "runs" / folder).is_dir()
    # the selector's extraction temperature was chosen on validation
    assert json.loads((out / "runs" / "iql" / "iql.json").read_text())["extraction"]["chosen_on"] == "validation"
    results = {p.name for p in (out / "results").rglob("*.parquet")}
    assert {"teacher__test.parquet", "iql-teacher__test_unseen_counterparty.parquet", "emodistill__test.parquet",
            "emodistill__test_unseen_counterparty.parquet", "iql-teacher[student].parquet"} <= results
    main_table = json.loads((out / "tables" / "main.json").read_text())
    assert {"teacher", "iql-teacher", "vanilla-slm", "emodistill"} <= {r["policy"] for r in main_table["rows"]}
    ablation = json.loads((out / "tables" / "ablation.json").read_text())
    assert ["iql-teacher", "teacher"] in [[r["policy"], r["baseline"]] for r in ablation["rows"]]
    selection = json.loads((out / "tables" / "selection-unseen.json").read_text())
    assert ["iql-teacher", "best-fixed-teacher"] in [[r["policy"], r["baseline"]] for r in selection["rows"]]
    headroom = json.loads((out / "tables" / "headroom.json").read_text())
    assert {"teacher", "bc-top-teacher gap closed", "persona-best-fixed-teacher"} <= set(headroom["columns"])
    assert {r["split"] for r in headroom["rows"]} == {"test", "test_unseen_counterparty"}
    assert "persona-best-fixed-teacher" not in {r["policy"] for r in main_table["rows"]}  # a reference, not a policy
    metrics = json.loads((out / "tables" / "metrics.json").read_text())
    assert {r["protocol"] for r in metrics["rows"] if r["policy"] == "emodistill"} == {"structured"}
    transfer = (out / "tables" / "transfer-domains.md").read_text()
    assert "iql-teacher[trained on debt]" in transfer
    tournament = json.loads((out / "tables" / "tournament.json").read_text())
    players = {r["agent"] for r in tournament["rows"]}
    assert "cp:iql-teacher@counterparty-runs" in players and "teacher" in players
    assert (out / "site" / "index.html").is_file() and (out / "leaderboard" / "teacher" / "entry.json").is_file()
    assert summary["steps_run"] and Path(summary["site"]).name == "index.html"
    again = reproduce(profile, out, model=str(tiny_model), progress=False, log=lines.append)
    assert again["steps_run"] == []
    assert any("done before" in line for line in lines)
