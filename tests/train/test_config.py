import re
from pathlib import Path

import pytest

from gap_replay.core.config import ConfigError
from gap_replay.train.config import CHAT_TOKENS, MARKER_TOKENS, TrainConfig, dump_toml, load_train_config

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ["run.output_dir=/tmp/run", "data.train=/data/OUT/train", "tokenizer.train_vocab_size=512"]


def test_defaults_are_the_papers_settings():
    config = load_train_config(overrides=REQUIRED)
    o = config.optim
    assert (o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, o.grad_clip) == (3e-4, 0.9, 0.95, 1e-5, 0.1, 1.0)
    assert (o.warmup_steps, o.min_lr_ratio) == (2000, 0.1)
    assert config.data.seq_len == 2048
    assert config.tokenizer.special_tokens == list(MARKER_TOKENS + CHAT_TOKENS)
    assert (config.model.hidden_size, config.model.num_layers, config.model.num_heads) == (4096, 32, 32)
    # Issue 27's defaults: BOS when the tokenizer has one, no decay on embeddings and norms, non-finite steps
    # skipped, accumulation reduce-scattering every micro-batch, a changed schedule end refused until chosen.
    assert config.tokenizer.bos == "auto" and not o.decay_embeddings and not o.decay_norms_and_biases
    assert (o.on_nonfinite, o.max_consecutive_skips, o.schedule_change) == ("skip", 10, "refuse")
    p = config.parallel
    assert (p.accumulation, p.init_timeout_s, p.timeout_s) == ("reduce_scatter", 600, 1800)


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[run]\noutput_dir = "out"\nsteps = 10\n[data]\ntrain = "OUT/train"\nseq_len = 128\n'
                    '[model]\npretrained = "llama"\n')
    config = load_train_config(path, ["data.seq_len=256", "optim.lr=1e-4",
                                      "parallel.activation_checkpointing=selective"])
    assert (config.run.steps, config.data.seq_len, config.optim.lr) == (10, 256, 1e-4)
    assert config.parallel.activation_checkpointing == "selective" and config.model.pretrained == "llama"


@pytest.mark.parametrize("text, message", [
    ("[nope]\nx = 1\n", "unknown section [nope]"),
    ("[run]\nspeed = 1\n", "unknown setting 'speed'"),
    ("[run]\nsteps = 'many'\n", "run.steps: expected an integer"),
    ("[data]\nseq_len = 0\n", "data.seq_len: must be > 0"),
    ("[optim]\nbeta2 = 1.5\n", "optim.beta2"),
    ("[optim]\nmin_lr_ratio = 2.0\n", "optim.min_lr_ratio"),
    ("[parallel]\nparam_dtype = 'int8'\n", "parallel.param_dtype"),
    ("[parallel]\nactivation_checkpointing = 'some'\n", "parallel.activation_checkpointing: expected one of off"),
    ("[parallel]\ncompile = 'yes'\n", "parallel.compile: expected one of auto, on, off"),
    ("[optim]\nimplementation = 'apex'\n", "optim.implementation: expected one of auto, fused, foreach"),
    ("[export]\nmax_file_mb = 0\n", "export.max_file_mb: must be > 0"),
    ("[model]\nnum_heads = 5\n", "model.hidden_size: must be a multiple of model.num_heads"),
    ("[run]\ndevice = 'tpu'\n", "run.device"),
    ("[tokenizer]\nspecial_tokens = 'x'\n", "expected a list"),
    ("[run\n", "invalid TOML"),
    ("[tokenizer]\nbos = 'yes'\n", "tokenizer.bos: expected one of auto, on, off"),
    ("[optim]\non_nonfinite = 'ignore'\n", "optim.on_nonfinite: expected one of skip, abort"),
    ("[optim]\nmax_consecutive_skips = -1\n", "optim.max_consecutive_skips: must be >= 0"),
    ("[optim]\nschedule_change = 'jump'\n", "optim.schedule_change: expected one of refuse, floor, rewarm, recompute"),
    ("[parallel]\naccumulation = 'local'\n", "parallel.accumulation: expected one of reduce_scatter, no_sync"),
    ("[parallel]\ntimeout_s = 0\n", "parallel.timeout_s: must be > 0"),
    ("[parallel]\ninit_timeout_s = -5\n", "parallel.init_timeout_s: must be > 0"),
])
def test_invalid_configurations_are_named(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_train_config(path, REQUIRED)


def test_required_settings():
    with pytest.raises(ConfigError, match="run.output_dir"):
        load_train_config()
    with pytest.raises(ConfigError, match="data.train"):
        load_train_config(overrides=["run.output_dir=x"])
    with pytest.raises(ConfigError, match="tokenizer"):
        load_train_config(overrides=["run.output_dir=x", "data.train=y"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_train_config("/nonexistent/run.toml")


def test_dump_round_trips(tmp_path):
    config = load_train_config(overrides=REQUIRED + ["log.peak_tflops=312", 'model.attn_implementation="eager"'])
    path = tmp_path / "dumped.toml"
    path.write_text(dump_toml(config))
    assert load_train_config(path) == config


def test_readme_documents_every_option_with_its_default():
    import tomllib

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Continued pretraining", 1)[1].split("\n## ", 1)[0]
    block = section.split("### Configuration", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert tomllib.loads(block) == TrainConfig().to_dict()


def test_checkpoints_need_a_filesystem_path_while_shards_may_be_on_object_storage(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match="run.output_dir 's3://bucket/run': the run's log, tokenizer and export need a "):
        load_train_config(path, ["run.output_dir='s3://bucket/run'", "data.train='s3://bucket/build/train'",
                                 "tokenizer.train_vocab_size=512"])
    config = load_train_config(path, ["run.output_dir='/tmp/run'", "data.train='s3://bucket/build/train'",
                                      "tokenizer.train_vocab_size=512"])
    assert config.data.train == "s3://bucket/build/train"


def test_document_masking_needs_an_attention_that_can_mask():
    config = load_train_config(overrides=REQUIRED)
    assert config.data.document_masking and config.parallel.loss_chunk_tokens == 4096
    assert config.parallel.replicate == 1 and not config.parallel.cpu_offload and not config.checkpoint.async_save
    with pytest.raises(ConfigError, match="data.document_masking: not available with model.attn_implementation = "
                                          "'sdpa_paged'"):
        load_train_config(overrides=REQUIRED + ['model.attn_implementation="sdpa_paged"'])
    load_train_config(overrides=REQUIRED + ['model.attn_implementation="sdpa_paged"', "data.document_masking=false"])
    with pytest.raises(ConfigError, match="parallel.replicate"):
        load_train_config(overrides=REQUIRED + ["parallel.replicate=0"])
