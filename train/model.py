"""Tokenizer and model: a `transformers` Llama built from the configuration (or a local pretrained
directory), the paper's marker tokens and the chat tokens added, the embeddings resized.

Every rank builds the architecture on the meta device (`meta_model`) and shards it. A model built from
the configuration is initialised once, whole, on rank 0 (`reference_model`) and scattered, so a run
starts from the same weights whatever the number of processes; a pretrained model is never whole on
any rank: each reads its rows of each tensor from the safetensors files (train/checkpoint.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from gap_replay.core.config import ConfigError
from gap_replay.train.config import ModelConfig, TrainConfig
from gap_replay.train.data import Tokenize, iter_texts

BASE_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")  # Llama's: unknown, beginning and end of sequence
TRAINED_TOKENIZER_DIR = "tokenizer"


def _transformers():
    import transformers

    return transformers


def train_tokenizer(files: Sequence[str | Path], vocab_size: int, documents: int, special_tokens: Sequence[str],
                    directory: Path, add_bos: bool = False):
    """A byte-level BPE tokenizer trained on the first `documents` texts of `files`, saved to `directory`.

    With `add_bos` it puts ``<s>`` before each text it encodes with special tokens (as Llama-2's does), so
    the exported tokenizer gives a model trained with a BOS at each document start the same at inference
    (the trainer's own tokenisation adds no special tokens: the packer places BOS and end-of-document)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = list(dict.fromkeys([*BASE_SPECIAL_TOKENS, *special_tokens]))
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())

    def texts():
        for index, text in iter_texts(files):
            if index >= documents:
                return
            yield text

    tokenizer.train_from_iterator(texts(), trainer=trainer)
    if add_bos:
        bos = tokenizer.token_to_id("<s>")
        tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                                 special_tokens=[("<s>", bos)])
    fast = _transformers().PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>",
                                                    bos_token="<s>", eos_token="</s>", pad_token="</s>")
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    return fast


def tokenizer_source(config: TrainConfig) -> Path:
    """Where the run's base tokenizer is read from (before the special tokens are added)."""
    if config.tokenizer.path:
        return Path(config.tokenizer.path)
    if config.model.pretrained:
        return Path(config.model.pretrained)
    return config.output_dir / TRAINED_TOKENIZER_DIR


def load_tokenizer(config: TrainConfig):
    """The run's tokenizer with the configured special tokens added (a trained one must exist already)."""
    source = tokenizer_source(config)
    transformers = _transformers()
    if source.is_file():  # a bare tokenizer.json
        tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=str(source))
    elif source.is_dir():
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    else:
        raise ConfigError(f"tokenizer not found: {source}")
    add_special_tokens(tokenizer, config.tokenizer.special_tokens)
    if config.tokenizer.eod_token:
        add_special_tokens(tokenizer, [config.tokenizer.eod_token])
    elif tokenizer.eos_token_id is None:
        raise ConfigError(f"tokenizer {source} has no eos token: set tokenizer.eod_token")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or config.tokenizer.eod_token
    return tokenizer


def add_special_tokens(tokenizer, tokens: Sequence[str]) -> int:
    """Add tokens the tokenizer never splits (and never learns merges across); returns how many were new."""
    return tokenizer.add_tokens(list(tokens), special_tokens=True) if tokens else 0


def eod_id(tokenizer, config: TrainConfig) -> int:
    if config.tokenizer.eod_token:
        return int(tokenizer.convert_tokens_to_ids(config.tokenizer.eod_token))
    return int(tokenizer.eos_token_id)


def bos_id(tokenizer, config: TrainConfig) -> int | None:
    """The token put before each document (`tokenizer.bos`), or None. auto: the tokenizer's BOS when it
    has one distinct from the end-of-document token (a tokenizer whose BOS is its EOS, as GPT-2's, already
    marks each document start with the end-of-document token before it)."""
    choice = config.tokenizer.bos
    if choice == "off":
        return None
    bos = tokenizer.bos_token_id
    if bos is None:
        if choice == "on":
            raise ConfigError("tokenizer.bos = 'on' but the tokenizer has no bos token: set tokenizer.bos = 'off' "
                              "or 'auto'")
        return None
    if choice == "auto" and int(bos) == eod_id(tokenizer, config):
        return None
    return int(bos)


def tokenize_function(tokenizer) -> Tokenize:
    """texts -> token ids, no BOS/EOS added (the packer places them), through the Rust tokenizer when
    there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return lambda texts: [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=False)]
    return lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]


def padded_vocab_size(tokens: int, current: int, multiple: int) -> int:
    """Embedding rows: the tokenizer's size rounded up to `multiple`, never fewer than the model has."""
    if tokens <= current:
        return current
    return math.ceil(tokens / multiple) * multiple


def model_config(config: TrainConfig, tokenizer):
    """The architecture of the run's model (vocabulary already sized for the tokenizer)."""
    transformers = _transformers()
    m = config.model
    if m.pretrained:
        if not Path(m.pretrained).is_dir():
            raise ConfigError(f"model.pretrained: not a directory: {m.pretrained}")
        architecture = transformers.AutoConfig.from_pretrained(m.pretrained, local_files_only=True)
        architecture.vocab_size = padded_vocab_size(len(tokenizer), architecture.vocab_size, m.pad_vocab_to_multiple_of)
        architecture.use_cache = False
        return architecture
    return llama_architecture(m, padded_vocab_size(len(tokenizer), 0, m.pad_vocab_to_multiple_of),
                              bos_id=tokenizer.bos_token_id, eos_id=eod_id(tokenizer, config),
                              pad_id=tokenizer.pad_token_id)


def llama_architecture(m: ModelConfig, vocab_size: int, bos_id: int | None = None, eos_id: int | None = None,
                       pad_id: int | None = None):
    """A Llama of the [model] section's shape with `vocab_size` embedding rows."""
    architecture = _transformers().LlamaConfig(
        vocab_size=vocab_size, hidden_size=m.hidden_size, intermediate_size=m.intermediate_size,
        num_hidden_layers=m.num_layers, num_attention_heads=m.num_heads,
        num_key_value_heads=m.num_kv_heads or m.num_heads,
        max_position_embeddings=m.max_position_embeddings, rope_theta=m.rope_theta, rms_norm_eps=m.rms_norm_eps,
        initializer_range=m.initializer_range, tie_word_embeddings=m.tie_word_embeddings,
        bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id,
    )
    architecture.use_cache = False
    return architecture


def _dtype_argument(dtype: torch.dtype) -> dict:
    major = int(_transformers().__version__.split(".")[0])
    return {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}


def reference_model(config: TrainConfig, architecture) -> nn.Module:
    """A model built from the configuration, whole, in float32 on the CPU, seeded (rank 0 only: its
    weights are scattered to the shards, so a run starts from the same weights whatever the number of
    processes). Pretrained weights never take this path: they are read shard-wise
    (checkpoint.load_hf_shards)."""
    if config.model.pretrained:
        raise ValueError("a pretrained model is loaded shard-wise (checkpoint.load_hf_shards), not whole")
    torch.manual_seed(config.run.seed)
    return _transformers().AutoModelForCausalLM.from_config(
        architecture, attn_implementation=config.model.attn_implementation, **_dtype_argument(torch.float32))


def meta_model(config: TrainConfig, architecture) -> nn.Module:
    """The same architecture with parameters on the meta device (no memory, no initialisation)."""
    transformers = _transformers()
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(
            architecture, attn_implementation=config.model.attn_implementation, **_dtype_argument(torch.float32))
    decoder = getattr(model, "model", None)
    if decoder is None or not isinstance(getattr(decoder, "layers", None), nn.ModuleList):
        raise ConfigError(f"model: {type(model).__name__} has no `model.layers` list of decoder layers")
    return model


def restore_computed_buffers(model: nn.Module, device: torch.device) -> None:
    """Recompute the buffers that are not in the state dict (rotary `inv_freq`) after `to_empty`."""
    for name, module in model.named_modules():
        transient = getattr(module, "_non_persistent_buffers_set", set())
        if not transient:
            continue
        if not hasattr(module, "config"):
            raise RuntimeError(f"cannot recompute the non-persistent buffers of {name} ({type(module).__name__})")
        with torch.device("cpu"):
            fresh = type(module)(config=module.config)
        for buffer in transient:
            setattr(module, buffer, getattr(fresh, buffer).to(device))


def compute_parameters(model: nn.Module) -> int:
    """Parameters used in a matrix product per token: all but the input embedding (a lookup); a tied
    output projection still counts."""
    total = sum(parameter.numel() for parameter in model.parameters())
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    return total - (0 if tied else embedding.numel())


def flops_per_token(compute_params: int, layers: int, heads: int, head_dim: int, seq_len: int) -> int:
    """Training FLOPs per token: 6N for the matrix products (2 forward, 4 backward per parameter) plus
    attention: per layer, QK^T and AV each take 2 * heads * head_dim * seq_len FLOPs per token forward,
    times 3 for forward + backward = 12 * layers * heads * head_dim * seq_len (no causal discount)."""
    return 6 * compute_params + 12 * layers * heads * head_dim * seq_len


def model_flops_per_token(model: nn.Module, seq_len: int) -> int:
    architecture = model.config
    heads = architecture.num_attention_heads
    head_dim = getattr(architecture, "head_dim", None) or architecture.hidden_size // heads
    return flops_per_token(compute_parameters(model), architecture.num_hidden_layers, heads, head_dim, seq_len)
