"""Document masking in packed sequences, and the chunked loss (train/packing.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gap_replay.train.config import ModelConfig
from gap_replay.train.model import llama_architecture
from gap_replay.train.packing import (IGNORE, ChunkedLossHead, DocumentMasking, document_positions, document_starts,
                                      shifted_targets, use_chunked_loss)
from gap_replay.train.trainer import causal_lm_loss, token_losses

BOS, EOD, VOCAB = 1, 2, 96


def tiny_model(attn_implementation: str = "sdpa", seed: int = 0) -> nn.Module:
    from transformers import AutoModelForCausalLM

    architecture = llama_architecture(ModelConfig(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                                                  num_kv_heads=2, max_position_embeddings=64), VOCAB)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(architecture, attn_implementation=attn_implementation,
                                            dtype=torch.float32).eval()


def documents(lengths: list[int], seed: int = 1) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.cat([torch.tensor([BOS]), torch.randint(3, VOCAB, (length,), generator=generator),
                       torch.tensor([EOD])]) for length in lengths]


def test_positions_restart_and_the_crossing_targets_are_ignored():
    batch = torch.tensor([[5, 6, EOD, BOS, 7, EOD, BOS, 8]])
    starts = document_starts(batch, EOD)
    assert starts.tolist() == [[True, False, False, True, False, False, True, False]]
    assert document_positions(starts).tolist() == [[0, 1, 2, 0, 1, 2, 0, 1]]
    # The targets of positions 2 and 5 (the BOS of the next document) and of the last position are not scored.
    assert shifted_targets(batch, starts=starts).tolist() == [[6, EOD, IGNORE, 7, EOD, IGNORE, 8, IGNORE]]


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
@pytest.mark.parametrize("chunk", [0, 7])
def test_a_packed_sequence_with_masking_scores_the_sum_of_its_documents_run_alone(attn_implementation, chunk):
    model = tiny_model(attn_implementation)
    if chunk:
        assert use_chunked_loss(model, chunk) is None
    parts = documents([5, 11, 3, 8])
    packed = torch.cat(parts)[None]
    masking = DocumentMasking(EOD, attn_implementation)
    with torch.no_grad():
        together = causal_lm_loss(model, packed, reduction="none", documents=masking).sum()
        alone = sum(causal_lm_loss(model, part[None], reduction="none").sum() for part in parts)
        unmasked = causal_lm_loss(model, packed, reduction="none").sum()
    assert float(together) == pytest.approx(float(alone), rel=1e-5, abs=1e-5)
    assert abs(float(unmasked) - float(alone)) > 1e-3  # without masking the documents see each other


def test_masked_gradients_are_those_of_the_documents_run_alone():
    parts = documents([4, 9, 6], seed=2)
    packed = torch.cat(parts)[None]
    together, alone = tiny_model(), tiny_model()
    _, targets = token_losses(together, packed, documents=DocumentMasking(EOD))
    causal_lm_loss(together, packed, documents=DocumentMasking(EOD)).backward()
    scored = int((targets != IGNORE).sum())
    assert scored == sum(len(part) - 1 for part in parts)
    (sum(causal_lm_loss(alone, part[None], reduction="none").sum() for part in parts) / scored).backward()
    for (name, a), (_, b) in zip(together.named_parameters(), alone.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-5), name


@pytest.mark.parametrize("chunk", [1, 5, 16, 1000])
def test_the_chunked_loss_has_the_plain_loss_and_gradients(chunk):
    plain, chunked = tiny_model(seed=3), tiny_model(seed=3)
    assert use_chunked_loss(chunked, chunk) is None
    assert isinstance(chunked.lm_head, ChunkedLossHead)
    assert chunked.state_dict().keys() == plain.state_dict().keys()
    batch = torch.randint(3, VOCAB, (3, 16), generator=torch.Generator().manual_seed(4))
    losses = []
    for model in (plain, chunked):
        loss = causal_lm_loss(model, batch, documents=DocumentMasking(EOD))
        loss.backward()
        losses.append(float(loss.detach()))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    for (name, a), (_, b) in zip(plain.named_parameters(), chunked.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-5), name
    # Outside the loss the head is the plain projection: logits, as before.
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=batch).logits, chunked(input_ids=batch).logits, atol=1e-6)


def test_the_chunked_loss_never_holds_the_whole_batch_logits():
    """Every tensor autograd keeps for the backward pass (saved tensors) is smaller than one chunk's logits
    plus the hidden states: no (tokens x vocabulary) float32 logits are saved."""
    model = tiny_model(seed=5)
    use_chunked_loss(model, 8)
    batch = torch.randint(3, VOCAB, (2, 32), generator=torch.Generator().manual_seed(6))
    largest = []

    def pack(tensor):
        largest.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        causal_lm_loss(model, batch).backward()
    tokens = batch.numel()
    assert max(largest) < tokens * VOCAB  # the whole batch's logits would be tokens x vocabulary


@pytest.mark.slow
def test_flex_attention_masks_documents_like_sdpa():
    pytest.importorskip("torch.nn.attention.flex_attention")
    parts = documents([6, 10, 4], seed=7)
    packed = torch.cat(parts)[None]
    try:
        with torch.no_grad():
            flex = causal_lm_loss(tiny_model("flex_attention"), packed, reduction="none",
                                  documents=DocumentMasking(EOD, "flex_attention")).sum()
    except Exception as error:  # noqa: BLE001 - flex attention needs a compiler backend for this device
        pytest.skip(f"flex attention unavailable here: {type(error).__name__}: {str(error)[:200]}")
    with torch.no_grad():
        sdpa = causal_lm_loss(tiny_model("sdpa"), packed, reduction="none", documents=DocumentMasking(EOD)).sum()
    assert float(flex) == pytest.approx(float(sdpa), rel=1e-5)


class _Breaks(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x):
        y = self.linear(x)
        if float(y.sum()) > 1e9:  # data-dependent Python control flow: a graph break
            return y
        return y * 2


def test_a_layer_compiles_as_one_graph_or_falls_back_with_a_reason():
    from gap_replay.train.parallel import checkpoint_name, compile_layer

    torch._dynamo.reset()
    x = torch.randn(3, 4)
    whole = compile_layer(nn.Sequential(nn.Linear(4, 4), nn.GELU()), backend="eager")
    assert isinstance(whole, torch._dynamo.eval_frame.OptimizedModule)  # state-dict names as torch.compile's
    assert torch.allclose(whole(x), whole._orig_mod(x))
    assert whole.forward.reason is None and whole.forward.partial is None
    assert [checkpoint_name(name) for name, _ in whole.named_parameters()] == ["0.weight", "0.bias"]
    said = []
    broken = compile_layer(_Breaks(), report=said.append, backend="eager")
    assert torch.allclose(broken(x), broken._orig_mod(x))
    assert broken.forward.reason and len(said) == 1 and "graph breaks" in said[0]
    assert torch.allclose(broken(x), broken._orig_mod(x))  # later calls go straight to the fallback
    assert len(said) == 1


def test_a_llama_decoder_layer_with_a_document_mask_compiles_as_one_graph():
    """The trainer's decoder layer (with the document mask and restarted positions) is captured whole by
    Dynamo: fullgraph holds (checked with the eager backend: capture, not code generation)."""
    from gap_replay.train.parallel import compile_layer

    torch._dynamo.reset()
    model = tiny_model()
    said = []
    model.model.layers[0] = compile_layer(model.model.layers[0], report=said.append, backend="eager")
    parts = documents([5, 9], seed=8)
    packed = torch.cat(parts)[None]
    reference = tiny_model()
    loss = causal_lm_loss(model, packed, documents=DocumentMasking(EOD))
    assert float(loss) == pytest.approx(float(causal_lm_loss(reference, packed, documents=DocumentMasking(EOD))),
                                        rel=1e-5)
    assert model.model.layers[0].forward.reason is None, said
