"""HSDP (`parallel.replicate`) and CPU offload (`parallel.cpu_offload`) on CPU processes (torchrun, gloo):
HSDP 2x2 trains to FSDP 4's losses, loads a pretrained directory shard-wise and exports it; CPU offload
trains to the losses of the same run without it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.train.conftest import tiny_config, torchrun
from tests.train.test_distributed import losses, records

WORKER = "tests/train/sharded_checks.py"


def run(tmp_path: Path, corpus: Path, name: str, nproc: int, *settings: str) -> Path:
    output = tmp_path / name
    config = tiny_config(tmp_path / f"{name}.toml", corpus, output, steps=3)
    arguments = [item for setting in ("checkpoint.interval=0", *settings) for item in ("--set", setting)]
    torchrun("-m", "gap_replay.train", "--config", str(config), *arguments, nproc=nproc)
    return output


@pytest.mark.slow
def test_hsdp_2x2_trains_to_the_losses_of_fsdp_over_4(corpus, tmp_path):
    fsdp = run(tmp_path, corpus, "fsdp", 4)
    hsdp = run(tmp_path, corpus, "hsdp", 4, "parallel.replicate=2")
    assert records(hsdp, "run")[0]["mesh"] == {"replicate": 2, "shard": 2}
    assert records(fsdp, "run")[0]["mesh"] == {"replicate": 1, "shard": 4}
    expected, got = losses(fsdp), losses(hsdp)
    assert expected.keys() == got.keys() == {1, 2, 3}
    for step in expected:
        assert got[step] == pytest.approx(expected[step], abs=1e-5), step
    assert records(hsdp, "eval")[-1]["val_loss"] == pytest.approx(records(fsdp, "eval")[-1]["val_loss"], abs=1e-5)
    assert (hsdp / "hf" / "config.json").is_file()


@pytest.mark.slow
def test_cpu_offload_trains_to_the_losses_of_the_same_run_without_it(corpus, tmp_path):
    plain = run(tmp_path, corpus, "plain", 2)
    offloaded = run(tmp_path, corpus, "offloaded", 2, "parallel.cpu_offload=true")
    assert records(offloaded, "run")[0]["cpu_offload"] is True
    for step, loss in losses(plain).items():
        assert losses(offloaded)[step] == pytest.approx(loss, abs=1e-5), step


@pytest.mark.slow
def test_hsdp_loads_a_pretrained_model_shard_wise_and_exports_it(corpus, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from gap_replay.train.data import shard_files
    from gap_replay.train.model import train_tokenizer

    pretrained = tmp_path / "pretrained"
    train_tokenizer(shard_files(corpus / "train"), 300, 1000, [], pretrained)
    torch.manual_seed(5)
    LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(pretrained)
    output = tmp_path / "out"
    output.mkdir()
    torchrun(WORKER, "hsdp-load-export", str(output), str(pretrained), "2", nproc=4)
    ranks = [json.loads((output / f"rank-{rank}.json").read_text()) for rank in range(4)]
    embedding = "model.embed_tokens.weight"
    assert ranks[0]["placements"][embedding] == ["R", "S(0)"]  # replicated over the groups, sharded within
    # 320 rows (300 + the 12 added tokens, padded to 64): ranks 0 and 2 hold rows 0-159, ranks 1 and 3 160-319.
    assert [rank["rows"][embedding] for rank in ranks] == [[0, 160], [160, 320], [0, 160], [160, 320]]
    loaded = torch.load(output / "loaded.pt")
    reference = AutoModelForCausalLM.from_pretrained(pretrained, dtype=torch.float32).state_dict()
    for name, tensor in loaded.items():
        stored = reference[name]
        assert torch.equal(tensor[:stored.shape[0]], stored), name
        if tensor.shape[0] > stored.shape[0]:  # rows of the added tokens: the mean of the checkpoint's rows
            assert torch.allclose(tensor[stored.shape[0]:], stored.double().mean(0).float().expand_as(
                tensor[stored.shape[0]:]), atol=1e-6), name
    exported = AutoModelForCausalLM.from_pretrained(output / "hf", dtype=torch.float32).state_dict()
    for name, tensor in loaded.items():
        assert torch.equal(exported[name], tensor), name
