"""The trainer in this process (a world of one, gloo): numerics against a plain PyTorch loop, the
schedule, activation checkpointing, logging and MFU, the command lines."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gap_replay.core.config import ConfigError
from tests.train.conftest import ROOT, tiny_config
from gap_replay.train.config import load_train_config
from gap_replay.train.trainer import accumulation_steps, lr_factor, train


def run(tmp_path: Path, corpus: Path, name: str, *overrides: str, steps: int = 4, stream=None) -> dict:
    config = tiny_config(tmp_path / f"{name}.toml", corpus, tmp_path / name, steps=steps)
    return train(load_train_config(config, ["checkpoint.interval=0", "log.interval=1", *overrides]), stream=stream)


def records(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]


def test_schedule_warms_up_then_decays_to_a_tenth():
    assert lr_factor(1, 2000, 10000, 0.1) == pytest.approx(1 / 2000)
    assert lr_factor(1000, 2000, 10000, 0.1) == pytest.approx(0.5)
    assert lr_factor(2000, 2000, 10000, 0.1) == pytest.approx(1.0)
    assert lr_factor(6000, 2000, 10000, 0.1) == pytest.approx(0.55)
    assert lr_factor(10000, 2000, 10000, 0.1) == pytest.approx(0.1)
    assert lr_factor(20000, 2000, 10000, 0.1) == pytest.approx(0.1)
    assert lr_factor(1, 0, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 10)))


def test_global_batch_is_reached_by_accumulation():
    config = load_train_config(overrides=["run.output_dir=x", "data.train=y", "tokenizer.train_vocab_size=300",
                                          "data.micro_batch_size=2", "data.global_batch_size=16"])
    assert accumulation_steps(config, 1) == 8 and accumulation_steps(config, 4) == 2
    with pytest.raises(ConfigError, match="multiple"):
        accumulation_steps(config, 3)


def test_throughput_waits_for_the_device_before_every_clock_read():
    from gap_replay.train.metrics import Throughput

    events, times = [], iter([10.0, 11.0, 13.0, 14.0])

    def clock():
        events.append("clock")
        return next(times)

    throughput = Throughput(wait=lambda: events.append("wait"), clock=clock)
    with throughput.pause():  # 11 -> 13: two seconds not counted
        pass
    throughput.add(300)
    rate, elapsed = throughput.rate()
    assert events == ["wait", "clock"] * 4
    assert (rate, elapsed) == (150.0, 2.0)


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory):
    """A 4-step run of one process; its log, summary and output directory."""
    tmp_path = tmp_path_factory.mktemp("single")
    summary = run(tmp_path, corpus, "run")
    return summary, tmp_path / "run"


def test_fsdp_trainer_matches_a_plain_pytorch_loop(single, corpus):
    """Same weights, data, optimizer and schedule (and document masking) without FSDP or the chunked loss:
    the same losses."""
    from gap_replay.train import model as models
    from gap_replay.train.data import BatchStream, shard_files
    from gap_replay.train.trainer import build_optimizer, build_scheduler, causal_lm_loss, document_masking

    summary, output = single
    config = load_train_config(output.parent / "run.toml")
    tokenizer = models.load_tokenizer(config)  # the tokenizer the run trained
    model = models.reference_model(config, models.model_config(config, tokenizer))
    optimizer, accumulation = build_optimizer(model, config), 4
    scheduler = build_scheduler(optimizer, config)
    batches = BatchStream(shard_files(corpus / "train"), models.tokenize_function(tokenizer), 64,
                          models.eod_id(tokenizer, config), micro_batch_size=2, bos_id=models.bos_id(tokenizer, config))
    plain = {}
    documents = document_masking(config, models.eod_id(tokenizer, config))
    assert documents is not None  # on by default
    for step in range(1, 5):
        total = 0.0
        for _ in range(accumulation):
            loss = causal_lm_loss(model, torch.from_numpy(next(batches)), documents=documents)
            (loss / accumulation).backward()
            total += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        plain[step] = total / accumulation
    assert summary["losses"].keys() == plain.keys()
    for step, loss in plain.items():
        assert summary["losses"][step] == pytest.approx(loss, abs=1e-5), step


def test_metrics_log_has_loss_lr_grad_norm_throughput_and_mfu(single):
    summary, output = single
    (start, *trained, evaluation) = records(output)
    assert start["kind"] == "run" and start["flops_per_token"] == summary["flops_per_token"]
    assert start["peak_flops_per_device"] == 0.05e12
    assert [record["step"] for record in trained] == [1, 2, 3, 4]
    for record in trained:
        assert record["kind"] == "train" and record["tokens"] == record["step"] * 8 * 64
        assert record["tokens_per_s"] > 0 and record["tokens_per_s"] == record["tokens_per_s_per_device"]
        assert record["tflops_per_device"] == pytest.approx(record["tokens_per_s"] * start["flops_per_token"] / 1e12)
        assert record["mfu"] == pytest.approx(record["tflops_per_device"] / 0.05)
    assert trained[0]["lr"] == pytest.approx(3e-3 / 2) and trained[1]["lr"] == pytest.approx(3e-3)
    assert trained[-1]["loss"] < trained[0]["loss"]
    assert evaluation["kind"] == "eval" and evaluation["step"] == 4
    assert set(evaluation) >= {"val_loss", "val_loss/guidelines", "val_loss/pubmed_abstracts",
                               "val_loss/pubmed_papers", "val_loss/replay"}
    assert summary["validation"] == evaluation
    assert (output / "config.toml").is_file() and (output / "hf" / "model.safetensors").is_file()


def test_the_run_records_its_bos_choice_and_its_tokenizer_adds_bos(single):
    """tokenizer.bos = auto resolves to on for the tokenizer trained for the run (its <s>): config.toml
    says so, the run record names the ids, and the exported tokenizer puts <s> first as at training."""
    from transformers import AutoTokenizer

    _, output = single
    assert load_train_config(output / "config.toml").tokenizer.bos == "on"
    assert load_train_config(output.parent / "run.toml").tokenizer.bos == "auto"
    (start, *_) = records(output)
    exported = AutoTokenizer.from_pretrained(output / "hf")
    assert start["bos_id"] == exported.bos_token_id == exported.convert_tokens_to_ids("<s>")
    assert start["eod_id"] == exported.eos_token_id
    assert exported("The patient")["input_ids"][0] == start["bos_id"]


def test_a_checkpoint_resumes_only_with_its_bos_choice(single, tmp_path):
    import shutil

    _, output = single
    work = tmp_path / "bos"
    shutil.copytree(output, work)
    config = load_train_config(output.parent / "run.toml", [f"run.output_dir={work}", "run.steps=6",
                                                            "tokenizer.bos='off'"])
    with pytest.raises(ConfigError, match="trained with BOS id 1, this run resolves tokenizer.bos = 'off' to none"):
        train(config)


@pytest.mark.parametrize("tied", [False, True])
def test_embeddings_and_norms_get_no_weight_decay_unless_asked(single, tied):
    from gap_replay.train import model as models
    from gap_replay.train.trainer import build_optimizer

    _, output = single
    config = load_train_config(output.parent / "run.toml", [f"model.tie_word_embeddings={str(tied).lower()}"])
    model = models.reference_model(config, models.model_config(config, models.load_tokenizer(config)))
    names = {id(parameter): name for name, parameter in model.named_parameters()}

    def groups(*settings):
        optimizer = build_optimizer(model, load_train_config(output.parent / "run.toml", [
            f"model.tie_word_embeddings={str(tied).lower()}", *settings]))
        return [(group["weight_decay"], sorted(names[id(p)] for p in group["params"]))
                for group in optimizer.param_groups]

    (decay, decayed), (none, kept) = groups()
    assert (decay, none) == (0.1, 0.0)
    assert "model.embed_tokens.weight" in kept and "model.norm.weight" in kept
    assert "model.layers.0.input_layernorm.weight" in kept
    assert all(name.endswith("_proj.weight") or name == "lm_head.weight" for name in decayed)
    assert ("lm_head.weight" in decayed) == (not tied)  # tied: one parameter, the embedding's
    (_, decayed), (_, kept) = groups("optim.decay_embeddings=true")
    assert "model.embed_tokens.weight" in decayed and "model.norm.weight" in kept
    ((_, everything),) = groups("optim.decay_embeddings=true", "optim.decay_norms_and_biases=true")
    assert len(everything) == len(names)


@pytest.mark.parametrize("mode", ["full", "selective"])
def test_activation_checkpointing_changes_nothing_but_memory(single, corpus, tmp_path, mode):
    stream = io.StringIO()
    summary = run(tmp_path, corpus, "ac", f"parallel.activation_checkpointing={mode}", "log.progress_bar=true",
                  "export.enabled=false", stream=stream)
    for step, loss in single[0]["losses"].items():
        assert summary["losses"][step] == pytest.approx(loss, abs=1e-6)
    assert "4/4" in stream.getvalue()  # the progress bar
    assert not (tmp_path / "ac" / "hf").exists()


@pytest.mark.slow
def test_compiled_layers_and_fused_adamw_give_the_same_losses(single, corpus, tmp_path):
    """The GPU defaults (torch.compile per decoder layer, fused AdamW), here forced on the CPU; the
    export still has the plain parameter names (no wrapper segments)."""
    summary = run(tmp_path, corpus, "compiled", "parallel.compile=on", "optim.implementation=fused")
    for step, loss in single[0]["losses"].items():
        assert summary["losses"][step] == pytest.approx(loss, abs=1e-5)
    from transformers import AutoModelForCausalLM

    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "compiled" / "hf")
    assert "model.layers.1.mlp.up_proj.weight" in exported.state_dict()


def test_resume_needs_the_same_number_of_processes(single, tmp_path):
    _, output = single
    work = tmp_path / "copy"
    import shutil

    shutil.copytree(output, work)
    complete = work / "checkpoints" / "step-00000004" / "COMPLETE"
    complete.write_text(json.dumps({**json.loads(complete.read_text()), "world_size": 2}))
    config = load_train_config(output.parent / "run.toml", [f"run.output_dir={work}", "run.steps=6"])
    with pytest.raises(ConfigError, match="written by 2 processes"):
        train(config)


def test_a_checkpoint_cut_while_saving_is_never_resumed_from(single, corpus, tmp_path):
    """A save killed half-way (some shard written, truncated, no COMPLETE): the rerun resumes from the last
    complete checkpoint, trains to the same losses as the uninterrupted run, and rewrites the cut one whole."""
    summary, _ = single
    first = run(tmp_path, corpus, "cut", "checkpoint.interval=2", "checkpoint.keep=0", "export.enabled=false")
    assert first["losses"] == pytest.approx(summary["losses"], abs=1e-6)
    cut = tmp_path / "cut" / "checkpoints" / "step-00000004"
    (cut / "COMPLETE").unlink()
    shard = next(cut.glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:100])
    again = run(tmp_path, corpus, "cut", "checkpoint.interval=2", "checkpoint.keep=0", "export.enabled=false")
    assert list(again["losses"]) == [3, 4]  # resumed after step 2
    for step in (3, 4):
        assert again["losses"][step] == pytest.approx(summary["losses"][step], abs=1e-6)
    assert (cut / "COMPLETE").exists() and shard.stat().st_size > 100


def test_a_finished_run_resumes_to_nothing_and_a_longer_one_continues(single, tmp_path):
    import shutil

    _, output = single
    work = tmp_path / "again"
    shutil.copytree(output, work)
    config = load_train_config(output.parent / "run.toml", [f"run.output_dir={work}", "export.enabled=false"])
    assert train(config)["losses"] == {}
    longer = train(load_train_config(output.parent / "run.toml", [f"run.output_dir={work}", "run.steps=5",
                                                                  "export.enabled=false",
                                                                  "optim.schedule_change='floor'"]))
    assert list(longer["losses"]) == [5]


def test_schedule_segments():
    from gap_replay.train.trainer import Schedule

    plain = Schedule([(0, 0.0, 2, 4)], 0.1)
    assert [plain.factor(n) for n in range(1, 7)] == pytest.approx([0.5, 1.0, 0.55, 0.1, 0.1, 0.1])
    rewarmed = Schedule([(0, 0.0, 2, 4), (4, 0.1, 2, 8)], 0.1)
    assert [rewarmed.factor(n) for n in range(1, 10)] == pytest.approx([0.5, 1.0, 0.55, 0.1, 0.55, 1.0, 0.55, 0.1,
                                                                         0.1])
    assert Schedule([(0, 0.0, 0, 1)], 0.1).factor(1) == pytest.approx(0.1)


@pytest.mark.parametrize("choice, lrs", [
    ("floor", [0.1, 0.1, 0.1, 0.1]),  # the 4-step schedule ended at its floor: it stays there
    ("rewarm", [0.55, 1.0, 0.55, 0.1]),  # warm-up over 2 steps from the floor, then a cosine ending at step 8
    ("recompute", [lr_factor(step, 2, 8, 0.1) for step in (5, 6, 7, 8)]),  # an 8-step run's schedule: a jump
])
def test_raising_steps_on_a_finished_run_takes_an_explicit_choice(single, tmp_path, choice, lrs):
    import shutil

    _, output = single
    work = tmp_path / "longer"
    shutil.copytree(output, work)
    base = [f"run.output_dir={work}", "run.steps=8", "export.enabled=false", "data.validation=''"]
    with pytest.raises(ConfigError, match=r"the schedule ended at step 4, the configuration says 8 .*resuming after "
                                          r"step 4, at 10% of the peak lr\): set optim.schedule_change = 'floor' "
                                          r"\(keep the schedule: 10% at the next step\), 'rewarm' .* or 'recompute' "
                                          r"\(the schedule of a run of 8 steps: 55% at the next step\)"):
        train(load_train_config(output.parent / "run.toml", base))
    stream = io.StringIO()
    train(load_train_config(output.parent / "run.toml", [*base, f"optim.schedule_change='{choice}'"]), stream=stream)
    assert f"optim.schedule_change = '{choice}'" in stream.getvalue()
    logged = {record["step"]: record["lr"] for record in records(work) if record["kind"] == "train"}
    assert [logged[step] for step in (5, 6, 7, 8)] == pytest.approx([3e-3 * lr for lr in lrs])
    # Raised again by the same choice, the schedule as recorded at step 8 goes on (a second re-warm from there).
    again = train(load_train_config(output.parent / "run.toml", [*base, "run.steps=8",
                                                                 f"optim.schedule_change='{choice}'"]))
    assert again["losses"] == {}


def test_command_lines_report_configuration_errors(tmp_path, capsys):
    from gap_replay.cli import main as gap_replay
    from gap_replay.train.cli import main as python_m_train

    assert python_m_train(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "train: error: config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\noutput_dir = 'x'\nspeed = 3\n")
    assert gap_replay(["train", "--config", str(bad)]) == 2
    assert "unknown setting 'speed'" in capsys.readouterr().err


def test_gap_replay_has_the_train_command():
    from gap_replay.cli import build_parser

    args = build_parser().parse_args(["train", "--config", "run.toml", "--set", "run.steps=3",
                                      "--nproc-per-node", "2"])
    assert args.config == "run.toml" and args.overrides == ["run.steps=3"] and args.nproc_per_node == 2
    assert args.handler.__module__ == "gap_replay.train.cli"


def test_a_process_that_trained_ends_with_its_code_and_its_buffered_output(tmp_path):
    # leave_process skips interpreter shutdown (where gloo's threads could abort the process), so it must deliver
    # what is still buffered itself: stdout to a file is block-buffered (PYTHONUNBUFFERED removed), stderr holds an
    # unfinished line, and a MemoryHandler keeps its record until logging shuts down.
    probe = ("import logging, logging.handlers, sys\n"
             "from gap_replay.train.cli import leave_process\n"
             "target = logging.StreamHandler(sys.stderr)\n"
             "logging.getLogger('run').addHandler(logging.handlers.MemoryHandler(100, target=target))\n"
             "print('trained', end='')\n"
             "sys.stderr.write('summary ')\n"
             "logging.getLogger('run').warning('logged')\n"
             "leave_process(3)\n"
             "print('never')\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, stdout=out, stderr=err, timeout=60)
    assert result.returncode == 3
    assert (tmp_path / "out").read_text() == "trained"
    assert (tmp_path / "err").read_text() == "summary logged\n"


def test_no_sync_accumulation_trains_the_same(single, corpus, tmp_path):
    summary = run(tmp_path, corpus, "nosync", "parallel.accumulation='no_sync'", "export.enabled=false")
    for step, loss in single[0]["losses"].items():
        assert summary["losses"][step] == pytest.approx(loss, abs=1e-6)


def test_no_sync_accumulation_is_refused_when_its_gradients_cannot_fit(single, corpus, tmp_path, monkeypatch):
    from gap_replay.train import trainer

    monkeypatch.setattr(trainer, "available_memory", lambda world: 10**6)
    with pytest.raises(ConfigError) as refused:
        run(tmp_path, corpus, "refused", "parallel.accumulation='no_sync'")
    message = str(refused.value)
    assert "\n" not in message and message.startswith("parallel.accumulation = 'no_sync' keeps every parameter's "
                                                      "gradient unsharded on each process: ")
    assert "x 4 bytes, float32)" in message and "more than the 0.00 GB of host memory available per process: " \
        "use 'reduce_scatter' (the default)" in message
    # One micro-batch per step has nothing to accumulate: no check; the default mode is never checked.
    run(tmp_path, corpus, "one", "parallel.accumulation='no_sync'", "data.global_batch_size=2", "export.enabled=false",
        steps=1)
    run(tmp_path, corpus, "default", "export.enabled=false", steps=1)


def test_no_sync_memory_estimate():
    from gap_replay.train.trainer import no_sync_bytes

    # Llama-2-7B on 8 GPUs, fp32 reduction: 27 GB of unsharded gradients, 6.7 GB of AdamW moments per GPU.
    gradients, state = no_sync_bytes(6_738_415_616, 6_738_415_616 // 8, 4)
    assert round(gradients / 1e9, 1) == 27.0 and round(state / 1e9, 1) == 6.7
