"""Document masking in packed sequences, and the loss computed in chunks.

A packed sequence holds several documents, each ``[bos] + tokens + [eod]``; a document starts at the
sequence's first position and right after each end-of-document token (a document cut at the end of a
sequence continues, as a document of its own, at the start of the next). With document masking
(`data.document_masking`, on by default) each token attends only to the earlier tokens of its own
document, rotary positions restart at 0 with each document, and the target after each end-of-document
token (the next document's first token, unpredictable from the document before) is not scored: the loss
of a packed sequence is then exactly the sum of its documents' losses, each run on its own.

How the attention is kept within a document depends on `model.attn_implementation`: ``sdpa`` gets a
block-diagonal causal boolean mask (batch x 1 x seq x seq; SDPA then runs its memory-efficient kernel
rather than the flash kernel on GPUs), ``flex_attention`` a block mask (`torch.nn.attention.flex_attention`,
which skips the blocks outside the documents), ``eager`` the same mask as additive float, and
``flash_attention_2`` only the restarted positions (transformers derives the variable-length documents
from them).

The chunked loss (`parallel.loss_chunk_tokens`) never materialises the logits of the whole micro-batch:
the output projection and the cross-entropy run over chunks of that many tokens, each chunk
recomputed in the backward pass (activation checkpointing of the projection), so at most one chunk's
logits exist at any time. The output projection's class is swapped for `ChunkedLossHead` (same
parameters, same state dict): given targets, its forward returns per-token losses instead of logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

IGNORE = -100
MASKED_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention", "flash_attention_2")


def document_starts(input_ids: torch.Tensor, eod_id: int) -> torch.Tensor:
    """(batch, seq) booleans: True where a document starts (position 0, and after each end-of-document token)."""
    starts = torch.zeros_like(input_ids, dtype=torch.bool)
    starts[:, 0] = True
    starts[:, 1:] = input_ids[:, :-1] == eod_id
    return starts


def document_positions(starts: torch.Tensor) -> torch.Tensor:
    """Rotary positions restarting at 0 with each document."""
    index = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)
    last_start = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    return index - last_start


def document_ids(starts: torch.Tensor) -> torch.Tensor:
    return starts.to(torch.int32).cumsum(dim=1)


def block_causal_mask(documents: torch.Tensor) -> torch.Tensor:
    """(batch, 1, seq, seq) booleans, True where query i may attend key j: j <= i, same document."""
    seq = documents.shape[1]
    causal = torch.ones(seq, seq, dtype=torch.bool, device=documents.device).tril()
    return (documents[:, :, None] == documents[:, None, :]).logical_and_(causal)[:, None]


def flex_block_mask(documents: torch.Tensor):
    """The same mask as a flex-attention BlockMask (blocks wholly outside every document skipped)."""
    from torch.nn.attention.flex_attention import create_block_mask

    def within_document(batch, head, query, key):
        return (documents[batch, query] == documents[batch, key]) & (key <= query)

    size, seq = documents.shape
    return create_block_mask(within_document, size, None, seq, seq, device=documents.device)


@dataclass(frozen=True)
class DocumentMasking:
    """Keeps attention within each document of a packed sequence (module docstring)."""

    eod_id: int
    attn_implementation: str = "sdpa"

    def inputs(self, input_ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """(model keyword arguments: positions and mask, the document starts)."""
        starts = document_starts(input_ids, self.eod_id)
        arguments = {"position_ids": document_positions(starts)}
        implementation = self.attn_implementation
        if implementation == "flash_attention_2":
            return arguments, starts
        documents = document_ids(starts)
        if implementation == "flex_attention":
            arguments["attention_mask"] = flex_block_mask(documents)
        elif implementation == "eager":
            allowed = block_causal_mask(documents)
            arguments["attention_mask"] = torch.zeros(allowed.shape, dtype=torch.float32,
                                                      device=allowed.device).masked_fill_(
                ~allowed, torch.finfo(torch.float32).min)
        else:
            arguments["attention_mask"] = block_causal_mask(documents)
        return arguments, starts


def shifted_targets(input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                    starts: torch.Tensor | None = None) -> torch.Tensor:
    """Position t's target: token t + 1 of the labels (default the inputs); the last position's is ignored,
    and with document `starts` so is each target that begins another document."""
    targets = F.pad((input_ids if labels is None else labels)[:, 1:], (0, 1), value=IGNORE)
    if starts is not None:
        crossing = F.pad(starts[:, 1:], (0, 1), value=False)
        targets = targets.masked_fill(crossing, IGNORE)
    return targets


def _token_losses(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  targets: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="none")


def chunked_token_losses(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                         targets: torch.Tensor, chunk_tokens: int, chunk_function=None) -> torch.Tensor:
    """Per-token cross-entropy (float32, flattened `targets`' order; 0 where ignored) of the output projection
    of `hidden`, over chunks of `chunk_tokens` tokens; with gradients, each chunk's logits are recomputed in
    the backward pass instead of kept."""
    from torch.utils.checkpoint import checkpoint

    function = chunk_function or _token_losses
    flat_hidden, flat_targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    pieces = []
    for part, part_targets in zip(flat_hidden.split(chunk_tokens), flat_targets.split(chunk_tokens), strict=True):
        if torch.is_grad_enabled():
            pieces.append(checkpoint(function, part, weight, bias, part_targets, use_reentrant=False))
        else:
            pieces.append(function(part, weight, bias, part_targets))
    # Flat: a view returned from the FSDP root's forward would escape its pre-backward hook (the caller reshapes).
    return torch.cat(pieces)


class ChunkedLossHead(nn.Linear):
    """The output projection, computing per-token losses in chunks while `targets` are set (`scoring`),
    logits otherwise. Swapped in for the model's `nn.Linear` head (`use_chunked_loss`): same parameters."""

    chunk_tokens: int = 4096
    chunk_function = None
    _targets: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self._targets is None:
            return super().forward(hidden)
        return chunked_token_losses(hidden, self.weight, self.bias, self._targets, self.chunk_tokens,
                                    self.chunk_function)


def use_chunked_loss(model: nn.Module, chunk_tokens: int, compiled: bool = False) -> str | None:
    """Swap the model's output projection for a `ChunkedLossHead` of `chunk_tokens` tokens per chunk (before
    sharding). With `compiled`, each chunk's projection and cross-entropy run through torch.compile
    (fullgraph). Returns why the chunked loss cannot be used, None when it is."""
    head = model.get_output_embeddings()
    if type(head) is not nn.Linear:
        return f"the output projection is a {type(head).__name__}, not a torch.nn.Linear"
    head.__class__ = ChunkedLossHead
    head.chunk_tokens = chunk_tokens
    head.chunk_function = torch.compile(_token_losses, fullgraph=True) if compiled else None
    return None


def chunked_head(model: nn.Module) -> ChunkedLossHead | None:
    head = model.get_output_embeddings()
    return head if isinstance(head, ChunkedLossHead) else None


@contextmanager
def scoring(head: ChunkedLossHead, targets: torch.Tensor) -> Iterator[None]:
    head._targets = targets
    try:
        yield
    finally:
        head._targets = None
