"""FSDP2 in 2 processes (torchrun, gloo): gradient accumulation reduce-scatters every micro-batch by
default, and the no-sync mode (the reduce-scatter skipped on all but the last) gets the same gradients; a pretrained Hugging Face directory loads shard-wise with
exactly `from_pretrained`'s parameters, no rank holding more than its shard and one tensor; the
shard-wise export loads back with `from_pretrained`, unchanged. The workers are tests/train/sharded_checks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gap_replay.train.checkpoint import file_of_each_tensor, hf_file_name
from gap_replay.train.parallel import checkpoint_name, owned_rows
from tests.train.conftest import torchrun

WORKER = "tests/train/sharded_checks.py"
SLACK = 32 * 2**20  # interpreter, allocator and gloo buffers beyond the tensors themselves


def rank_results(output: Path) -> list[dict]:
    return [json.loads((output / f"rank-{rank}.json").read_text()) for rank in range(2)]


@pytest.mark.slow
def test_no_sync_accumulation_gets_the_gradients_of_reduce_scatter_every_micro_batch(tmp_path):
    torchrun(WORKER, "gradient-sync", str(tmp_path))
    for result in rank_results(tmp_path):
        # No sharded gradient exists until the last micro-batch's backward when the reduce-scatter is skipped;
        # the always-synchronised run has them after the first.
        assert result["no_gradients_before_skipped"] == [True, True, True]
        assert result["no_gradients_before_synced"] == [True, False, False]
        assert result["max_gradient"] > 1e-3
        assert result["max_difference"] <= 1e-6


@pytest.fixture(scope="module")
def pretrained(corpus, tmp_path_factory) -> Path:
    """A ~200 MB float32 Llama in several safetensors files, its vocabulary the tokenizer's 300 tokens: the
    12 added tokens grow the embeddings to 320 rows (300-319 on the second rank)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from gap_replay.train.data import shard_files
    from gap_replay.train.model import train_tokenizer

    directory = tmp_path_factory.mktemp("pretrained")
    train_tokenizer(shard_files(corpus / "train"), 300, 1000, [], directory)
    torch.manual_seed(3)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=512, intermediate_size=2048,
                                         num_hidden_layers=12, num_attention_heads=8, num_key_value_heads=8))
    model.save_pretrained(directory, max_shard_size="40MB")
    assert (directory / "model.safetensors.index.json").is_file()
    return directory


@pytest.fixture(scope="module")
def loaded(pretrained, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("load-export")
    torchrun(WORKER, "load-export", str(output), str(pretrained), str(16 * 2**20))
    return output


def reference(directory: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).state_dict()


def loaded_parameters(loaded: Path) -> dict[str, torch.Tensor]:
    """The model the workers loaded, its two ranks' shards put together."""
    shards = [torch.load(loaded / f"shards-{rank}.pt") for rank in range(2)]
    assert shards[0].keys() == shards[1].keys()
    whole = {}
    for name in shards[0]:
        (start0, first), (start1, second) = shards[0][name], shards[1][name]
        assert (start0, start1) == (0, first.shape[0]), name
        whole[name] = torch.cat([first, second])
    return whole


@pytest.mark.slow
def test_shard_wise_loading_gives_from_pretrained_parameters(pretrained, loaded):
    expected, actual = reference(pretrained), loaded_parameters(loaded)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert actual[name].shape == (320, 512)
            assert torch.equal(actual[name][:300], tensor), name
            # The added tokens' rows: the mean of the checkpoint's rows, summed over both ranks' shards.
            assert torch.equal(actual[name][300:], tensor.double().mean(0).float().expand(20, -1)), name
        else:
            assert torch.equal(actual[name], tensor), name


@pytest.mark.slow
def test_no_rank_holds_more_than_its_shard_and_one_tensor(loaded):
    for result in rank_results(loaded):
        bound = result["shard_bytes"] + result["largest_tensor_bytes"] + SLACK
        # The bound tells the two designs apart: the whole model on a rank would exceed it.
        assert result["model_bytes"] > bound
        assert result["load_peak_bytes"] <= bound, result
        # Exporting: the shard is held already; a file (16 MiB here) and a gathered tensor come and go.
        assert result["export_peak_bytes"] <= 16 * 2**20 + 2 * result["largest_tensor_bytes"] + SLACK, result


@pytest.mark.slow
def test_shard_wise_export_round_trips(pretrained, loaded):
    from transformers import AutoTokenizer

    exported = loaded / "hf"
    index = json.loads((exported / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and all((exported / name).is_file() for name in files)
    assert json.loads((exported / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    expected, actual = loaded_parameters(loaded), reference(exported)
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
    assert len(AutoTokenizer.from_pretrained(exported)) == 312  # the added markers and chat tokens


def test_tensors_go_into_files_in_order_up_to_the_size_limit():
    assert file_of_each_tensor([4, 4, 4, 10, 1, 1], 8) == [0, 0, 1, 2, 3, 3]
    assert file_of_each_tensor([3, 3], 100) == [0, 0]
    assert [hf_file_name(0, 1), hf_file_name(1, 3)] == ["model.safetensors", "model-00002-of-00003.safetensors"]


def test_checkpoint_names_leave_out_the_wrappers():
    name = "model.layers.3._orig_mod._checkpoint_wrapped_module.mlp.up_proj.weight"
    assert checkpoint_name(name) == "model.layers.3.mlp.up_proj.weight"
    assert owned_rows(torch.zeros(5, 2)) == (0, 5)


@pytest.mark.slow
def test_no_sync_accumulation_holds_the_unsharded_gradients(tmp_path):
    """bench/train.py --accumulation-memory on 2 processes: the no-sync mode's peak host memory exceeds the
    default's by most of the gradients a rank does not own (unsharded minus sharded, fp32). Prints the
    figures (pytest -s)."""
    import subprocess
    import sys

    from tests.train.conftest import ROOT

    result = subprocess.run([sys.executable, "bench/train.py", "--accumulation-memory", "--memory-processes", "2",
                             "--memory-shape", "6,512,2048,4"], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(json.dumps(report["runs"]))
    sharded, no_sync = report["runs"]["2proc_reduce_scatter"], report["runs"]["2proc_no_sync"]
    not_owned = no_sync["unsharded_fp32_gradients_mib"] - no_sync["sharded_fp32_gradients_mib"]
    assert not_owned > 30
    assert no_sync["peak_mib"] - sharded["peak_mib"] >= 0.5 * not_owned, report


@pytest.mark.slow
def test_validation_loss_is_the_same_at_1_2_and_4_processes(corpus, tmp_path):
    """5 sequences per part (an uneven share at 2 and 4 processes), micro-batches of 2."""
    from gap_replay.train.data import shard_files
    from gap_replay.train.model import train_tokenizer

    train_tokenizer(shard_files(corpus / "train"), 300, 1000, [], tmp_path / "tokenizer")
    results = {}
    for processes in (1, 2, 4):
        output = tmp_path / f"n{processes}"
        output.mkdir()
        torchrun(WORKER, "validation", str(output), str(corpus), str(tmp_path / "tokenizer"), nproc=processes)
        ranks = [json.loads((output / f"rank-{rank}.json").read_text()) for rank in range(processes)]
        assert all(result == ranks[0] for result in ranks)
        results[processes] = ranks[0]
    assert results[1]["val_tokens"] > 4 * 4 * 64 and len(results[1]) == 4 + 2  # 4 parts, overall, tokens
    assert results[2] == results[1] and results[4] == results[1], results
