"""One TOML file per training run, plus ``--set section.key=value`` overrides.

Every section is a dataclass below; its fields and defaults are the documentation of the run
configuration (the README's "Continued pretraining" section lists them all). The defaults follow the
MEDITRON paper: a Llama-2-7B-shaped model, AdamW (0.9, 0.95), eps 1e-5, weight decay 0.1, gradient
clipping 1.0, 2000 warmup steps and a cosine decay to 10% of a 3e-4 peak learning rate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gap_replay.core.config import ConfigError, apply_layers
from gap_replay.core.markers import MARKER_TOKENS

CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
DTYPES = ("auto", "float32", "bfloat16", "float16")
ACTIVATION_CHECKPOINTING = ("off", "full", "selective")
OPTIMIZER_IMPLEMENTATIONS = ("auto", "fused", "foreach")
BOS_CHOICES = ("auto", "on", "off")
SCHEDULE_CHANGES = ("refuse", "floor", "rewarm", "recompute")


@dataclass
class RunConfig:
    output_dir: str = ""  # required: checkpoints, metrics.jsonl, the trained tokenizer and the export go here
    seed: int = 42  # model initialisation and every random number generator
    steps: int = 1000  # optimizer steps of the whole run (the schedule's length)
    stop_at: int = 0  # stop this invocation after this step, with a checkpoint (0 = run to `steps`)
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    deterministic: bool = False  # torch.use_deterministic_algorithms; bitwise-reproducible runs, slower on GPU
    threads: int = 0  # CPU threads per process; 0 = $OMP_NUM_THREADS, else cores / processes on the node

    def validate(self) -> None:
        if not self.output_dir:
            raise ConfigError("run.output_dir: required")
        if "://" in self.output_dir and not self.output_dir.startswith("file://"):
            # torch.distributed.checkpoint's file writer, the export and the tokenizer write files in place.
            raise ConfigError(f"run.output_dir {self.output_dir!r}: the run's log, tokenizer and export need a "
                              "filesystem path (a local disk or a shared mount); checkpoint.directory and the shards "
                              "(data.train, data.validation) may be on object storage")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"run.device: expected auto, cpu or cuda, got {self.device!r}")
        _positive("run.steps", self.steps)
        _positive("run.stop_at", self.stop_at, allow_zero=True)
        _positive("run.threads", self.threads, allow_zero=True)


@dataclass
class ModelConfig:
    pretrained: str = ""  # local Hugging Face model directory to continue from; empty = build from the fields below
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 0  # 0 = num_heads (multi-head attention); fewer = grouped-query attention
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    attn_implementation: str = "sdpa"  # sdpa | flex_attention | eager | flash_attention_2 (when installed)
    pad_vocab_to_multiple_of: int = 64  # embedding rows rounded up after the special tokens are added

    def validate(self) -> None:
        for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "max_position_embeddings",
                     "pad_vocab_to_multiple_of"):
            _positive(f"model.{name}", getattr(self, name))
        _positive("model.num_kv_heads", self.num_kv_heads, allow_zero=True)
        heads, kv_heads = self.num_heads, self.num_kv_heads or self.num_heads
        if not self.pretrained:
            if self.hidden_size % heads:
                raise ConfigError("model.hidden_size: must be a multiple of model.num_heads")
            if heads % kv_heads:
                raise ConfigError("model.num_kv_heads: must divide model.num_heads")


@dataclass
class TokenizerConfig:
    path: str = ""  # local tokenizer directory (or tokenizer.json); empty = model.pretrained's tokenizer
    train_vocab_size: int = 0  # no path and no pretrained model: train a byte-level BPE of this size on data.train
    train_documents: int = 20000  # documents of data.train read to train it
    special_tokens: list[str] = field(default_factory=lambda: list(MARKER_TOKENS + CHAT_TOKENS))
    eod_token: str = ""  # token joining documents; empty = the tokenizer's eos token
    # A beginning-of-sequence token before each document: auto = when the tokenizer has one distinct from the
    # end-of-document token (Llama-2's <s>, and the <s> of a tokenizer trained for the run) | on (required) | off
    bos: str = "auto"

    def validate(self) -> None:
        _choice("tokenizer.bos", self.bos, BOS_CHOICES)
        _positive("tokenizer.train_vocab_size", self.train_vocab_size, allow_zero=True)
        _positive("tokenizer.train_documents", self.train_documents)


@dataclass
class DataConfig:
    train: str = ""  # required: a split directory of Parquet shards (OUT/train)
    validation: str = ""  # OUT/validation; empty = no validation loss
    seq_len: int = 2048  # tokens per packed sequence (MEDITRON: 2048 for 7B, 4096 for 70B)
    micro_batch_size: int = 1  # sequences per process per forward/backward
    global_batch_size: int = 0  # sequences per optimizer step over all processes; 0 = micro_batch_size x processes
    tokenize_batch: int = 64  # documents tokenised together
    prefetch: int = 4  # micro-batches prepared ahead by a background thread (0 = in the training loop)
    # Attention kept within each document of a packed sequence, positions restarting with each document, the
    # target after an end-of-document token not scored (train/packing.py); false = documents attend to each other
    document_masking: bool = True

    def validate(self) -> None:
        if not self.train:
            raise ConfigError("data.train: required (a split directory of shards, e.g. OUT/train)")
        _positive("data.seq_len", self.seq_len)
        if self.seq_len < 2:
            raise ConfigError("data.seq_len: must be at least 2")
        _positive("data.micro_batch_size", self.micro_batch_size)
        _positive("data.global_batch_size", self.global_batch_size, allow_zero=True)
        _positive("data.tokenize_batch", self.tokenize_batch)
        _positive("data.prefetch", self.prefetch, allow_zero=True)


@dataclass
class OptimConfig:
    lr: float = 3e-4  # peak learning rate (MEDITRON: 3e-4 for 7B, 1.5e-4 for 70B)
    min_lr_ratio: float = 0.1  # the cosine ends at this fraction of the peak
    warmup_steps: int = 2000  # linear warm-up from 0
    decay_steps: int = 0  # step where the cosine reaches its floor; 0 = run.steps
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-5
    weight_decay: float = 0.1
    decay_norms_and_biases: bool = False  # false: 1-D parameters (RMSNorm weights, biases) get no weight decay
    # false: the input embedding (and an output projection tied to it) gets no weight decay: rows of tokens absent
    # from the data get no gradient, so decay would only shrink them
    decay_embeddings: bool = False
    grad_clip: float = 1.0  # maximum global gradient norm; 0 = no clipping
    implementation: str = "auto"  # AdamW kernels: auto (fused on GPU, foreach on CPU) | fused | foreach
    # A step whose loss or gradient norm is not finite (on any rank; all ranks agree): skip (no update, the
    # optimizer's state untouched, training goes on) | abort (stop with an error, no update, no checkpoint)
    # Resuming with a different schedule end (run.steps raised or lowered, or optim.decay_steps changed):
    # refuse (stop with one line naming the choices) | floor (keep the schedule as it was: past its end, the
    # floor) | rewarm (from the resumed step, warm up again over warmup_steps from the lr reached to the peak,
    # then a cosine to the floor at the new end) | recompute (the schedule of a run of the new length: the lr jumps)
    schedule_change: str = "refuse"
    on_nonfinite: str = "skip"
    max_consecutive_skips: int = 10  # skip: stop with an error after this many non-finite steps in a row; 0 = never

    def validate(self) -> None:
        _positive("optim.lr", self.lr)
        _choice("optim.implementation", self.implementation, OPTIMIZER_IMPLEMENTATIONS)
        _choice("optim.on_nonfinite", self.on_nonfinite, ("skip", "abort"))
        _choice("optim.schedule_change", self.schedule_change, SCHEDULE_CHANGES)
        _positive("optim.max_consecutive_skips", self.max_consecutive_skips, allow_zero=True)
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"optim.min_lr_ratio: must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("warmup_steps", "decay_steps", "weight_decay", "grad_clip"):
            _positive(f"optim.{name}", getattr(self, name), allow_zero=True)
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"optim.{name}: must be in [0, 1)")
        _positive("optim.eps", self.eps)


@dataclass
class ParallelConfig:
    backend: str = "auto"  # auto (nccl on GPU, gloo on CPU) | nccl | gloo
    param_dtype: str = "auto"  # compute dtype: auto (bfloat16 on GPU, float32 on CPU) | float32 | bfloat16 | float16
    reduce_dtype: str = "float32"  # gradient reduce-scatter dtype
    # off | full (recompute each decoder layer in the backward pass) | selective (keep the outputs of the
    # matrix products and attention, recompute the cheap rest: norms, activations, rotary embeddings)
    activation_checkpointing: str = "off"
    reshard_after_forward: bool = True  # free gathered parameters after forward (ZeRO-3); false = keep them (ZeRO-2)
    compile: str = "auto"  # torch.compile each decoder layer: auto (on GPU) | on | off
    # Gradient accumulation: reduce_scatter (each micro-batch's gradients reduce-scattered after its backward,
    # accumulated sharded) | no_sync (micro-batches before the last skip it: the whole model's gradients
    # accumulate unsharded on every process, 4 bytes per parameter in float32; refused at start when they cannot fit)
    accumulation: str = "reduce_scatter"
    init_timeout_s: int = 600  # seconds the processes wait for each other to start (rendezvous, process group set-up)
    # seconds a collective may wait before the run fails (NCCL's watchdog, gloo): long enough for the slowest
    # rank's synchronous checkpoint write or export file, which the others wait for at a barrier
    timeout_s: int = 1800
    # The output projection and cross-entropy over chunks of this many tokens, each recomputed in the backward
    # pass: the whole micro-batch's logits never exist (train/packing.py); 0 = the plain loss (all logits at once)
    loss_chunk_tokens: int = 4096
    # HSDP: R groups of processes, parameters sharded within a group (world / R processes, e.g. a node) and
    # replicated across groups; 1 = FSDP over all processes. Must divide the number of processes
    replicate: int = 1
    # keep the sharded parameters, gradients and optimizer state in host memory (FSDP2's CPUOffloadPolicy): the
    # optimizer steps on the CPU, each layer is copied to the GPU for its forward and backward
    cpu_offload: bool = False

    def validate(self) -> None:
        _choice("parallel.backend", self.backend, ("auto", "nccl", "gloo"))
        _choice("parallel.accumulation", self.accumulation, ("reduce_scatter", "no_sync"))
        _positive("parallel.init_timeout_s", self.init_timeout_s)
        _positive("parallel.timeout_s", self.timeout_s)
        _positive("parallel.loss_chunk_tokens", self.loss_chunk_tokens, allow_zero=True)
        _positive("parallel.replicate", self.replicate)
        for name in ("param_dtype", "reduce_dtype"):
            _choice(f"parallel.{name}", getattr(self, name), DTYPES)
        _choice("parallel.activation_checkpointing", self.activation_checkpointing, ACTIVATION_CHECKPOINTING)
        _choice("parallel.compile", self.compile, ("auto", "on", "off"))


@dataclass
class CheckpointConfig:
    interval: int = 1000  # steps between distributed checkpoints; 0 = only at the end (and at run.stop_at)
    keep: int = 2  # most recent checkpoints kept; 0 = all
    resume: bool = True  # continue from the latest complete checkpoint in the checkpoint directory
    # Where checkpoints go: empty = run.output_dir/checkpoints; a directory or an object-storage URI
    # (s3://bucket/run/checkpoints: torch.distributed.checkpoint writes through fsspec, s3fs for s3://).
    directory: str = ""
    # write the model and optimizer shards in a background thread (torch.distributed.checkpoint.async_save, after
    # a copy to host memory) while training goes on; COMPLETE is written once the write has finished
    async_save: bool = False

    def validate(self) -> None:
        _positive("checkpoint.interval", self.interval, allow_zero=True)
        _positive("checkpoint.keep", self.keep, allow_zero=True)


@dataclass
class EvalConfig:
    interval: int = 0  # steps between validation-loss runs; 0 = only at the end
    sequences_per_part: int = 64  # validation sequences per part (source) and run, over all processes; 0 = all

    def validate(self) -> None:
        _positive("eval.interval", self.interval, allow_zero=True)
        _positive("eval.sequences_per_part", self.sequences_per_part, allow_zero=True)


@dataclass
class LogConfig:
    interval: int = 10  # steps between metric lines
    jsonl: str = ""  # JSON-lines log; empty = output_dir/metrics.jsonl
    progress_bar: bool = False  # a tqdm bar on the console instead of a line per interval
    peak_tflops: float = 0.0  # per-device peak for MFU; 0 = known GPUs by name (bf16 dense), else no MFU

    def validate(self) -> None:
        _positive("log.interval", self.interval)
        _positive("log.peak_tflops", self.peak_tflops, allow_zero=True)


@dataclass
class ExportConfig:
    enabled: bool = True  # write a Hugging Face model directory when the run reaches run.steps
    directory: str = ""  # empty = output_dir/hf
    dtype: str = "bfloat16"  # float32 | bfloat16 | float16
    max_file_mb: int = 4096  # safetensors files of at most this size; a rank holds one in host memory while writing it

    def validate(self) -> None:
        _choice("export.dtype", self.dtype, DTYPES[1:])
        _positive("export.max_file_mb", self.max_file_mb)


@dataclass
class TrainConfig:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sections(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self) -> None:
        """Each section's own rules, then those that span sections."""
        for section in self.sections().values():
            section.validate()
        self.validate_across_sections()

    def validate_across_sections(self) -> None:
        if not (self.tokenizer.path or self.model.pretrained or self.tokenizer.train_vocab_size):
            raise ConfigError("tokenizer: set tokenizer.path, model.pretrained or tokenizer.train_vocab_size")
        masked = ("sdpa", "flex_attention", "eager", "flash_attention_2")
        if self.data.document_masking and self.model.attn_implementation not in masked:
            raise ConfigError(f"data.document_masking: not available with model.attn_implementation = "
                              f"{self.model.attn_implementation!r} (use one of {', '.join(masked)}, or set "
                              "data.document_masking = false)")

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output_dir)


def _positive(where: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _choice(where: str, value: str, allowed: Iterable[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {value!r}")


def load_train_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                      base: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults, then `base`, then the TOML file, then `section.key=value` overrides; validated.

    A run config is written by hand: a string where a list belongs is a mistake, not a comma list."""
    config = TrainConfig()
    apply_layers(config.sections(), path, overrides, base, comma_lists=False)  # validates each section
    config.validate_across_sections()
    return config


def dump_toml(config: TrainConfig) -> str:
    """The configuration as TOML (saved next to the checkpoints so a run says what it was)."""
    lines: list[str] = []
    for section, values in config.to_dict().items():
        lines.append(f"[{section}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    import json

    return json.dumps(str(value))
