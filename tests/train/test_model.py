import pytest
import torch

from gap_replay.train.config import CHAT_TOKENS, MARKER_TOKENS, load_train_config
from gap_replay.train.data import shard_files
from gap_replay.train.model import (
    bos_id,
    compute_parameters,
    eod_id,
    flops_per_token,
    load_tokenizer,
    meta_model,
    model_config,
    model_flops_per_token,
    padded_vocab_size,
    reference_model,
    restore_computed_buffers,
    tokenize_function,
    train_tokenizer,
)

TINY = ["model.hidden_size=64", "model.intermediate_size=128", "model.num_layers=2", "model.num_heads=4",
        "model.num_kv_heads=2", "model.max_position_embeddings=128"]


@pytest.fixture(scope="module")
def base_tokenizer(corpus, tmp_path_factory):
    """A BPE tokenizer trained on the corpus without the added tokens (like a pretrained model's)."""
    directory = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(shard_files(corpus / "train"), 300, 1000, [], directory)
    return directory


def config_for(corpus, output, *overrides):
    return load_train_config(overrides=[f"run.output_dir={output}", f"data.train={corpus}/train", *TINY, *overrides])


def test_special_tokens_are_single_tokens_and_documents_end_with_eod(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}")
    tokenizer = load_tokenizer(config)
    added = MARKER_TOKENS + CHAT_TOKENS
    assert len(tokenizer) == 300 + len(added)
    tokenize = tokenize_function(tokenizer)
    (ids,) = tokenize(["See [BIB_REF]A trial, Smith[/BIB_REF] and [TABLE]Doses[/TABLE]. <|im_start|>user"])
    pieces = tokenizer.convert_ids_to_tokens(ids)
    for token in ("[BIB_REF]", "[/BIB_REF]", "[TABLE]", "[/TABLE]", "<|im_start|>"):
        assert token in pieces
    # The tokenisation adds no special tokens: the packer puts BOS before and end-of-document after each document.
    assert tokenizer.eos_token_id not in ids and tokenizer.bos_token_id not in ids


def test_every_packed_document_starts_with_bos(corpus, base_tokenizer, tmp_path):
    """The run's batches with a Llama-style tokenizer (BOS <s>, EOS </s>): each document, decoded from the
    packed stream, is <s> + the text + </s>, in the shards' order; no document starts without BOS."""
    from gap_replay.train.data import BatchStream, iter_texts

    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}")
    tokenizer = load_tokenizer(config)
    bos, eod = bos_id(tokenizer, config), eod_id(tokenizer, config)
    assert (tokenizer.convert_ids_to_tokens(bos), tokenizer.convert_ids_to_tokens(eod)) == ("<s>", "</s>")
    stream = BatchStream(shard_files(corpus / "train"), tokenize_function(tokenizer), 64, eod, micro_batch_size=4,
                         bos_id=bos)
    flat = [token for _ in range(20) for row in next(stream).tolist() for token in row]
    documents = []
    while eod in flat:
        end = flat.index(eod)
        documents.append(flat[:end + 1])
        flat = flat[end + 1:]
    assert len(documents) >= 8
    texts = [text for _, text in iter_texts(shard_files(corpus / "train"))]
    for document, text in zip(documents, texts):
        assert document[0] == bos and bos not in document[1:]
        assert tokenizer.decode(document[1:-1]) == text
    assert flat[0] == bos  # the document cut at the end of the last sequence too


def test_bos_choice(corpus, base_tokenizer, tmp_path):
    from gap_replay.core.config import ConfigError

    tokenizer = load_tokenizer(config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}"))
    choose = lambda *settings: bos_id(tokenizer, config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}",
                                                            *settings))
    assert choose() == choose("tokenizer.bos='on'") == tokenizer.convert_tokens_to_ids("<s>")
    assert choose("tokenizer.bos='off'") is None
    # A tokenizer whose BOS is its end-of-document token (GPT-2's way): auto adds none, on adds it anyway.
    assert choose("tokenizer.eod_token='<s>'") is None
    assert choose("tokenizer.eod_token='<s>'", "tokenizer.bos='on'") == tokenizer.convert_tokens_to_ids("<s>")
    tokenizer.bos_token = None
    assert choose() is None
    with pytest.raises(ConfigError, match="tokenizer.bos = 'on' but the tokenizer has no bos token"):
        choose("tokenizer.bos='on'")


def test_a_tokenizer_trained_for_the_run_adds_bos_at_inference_like_llama(corpus, tmp_path):
    trained = train_tokenizer(shard_files(corpus / "train"), 300, 200, [], tmp_path / "with", add_bos=True)
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(tmp_path / "with")
    for tokenizer in (trained, loaded):
        ids = tokenizer("The patient")["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and tokenizer.bos_token_id not in ids[1:]
        assert tokenizer("The patient", add_special_tokens=False)["input_ids"] == ids[1:]
    plain = train_tokenizer(shard_files(corpus / "train"), 300, 200, [], tmp_path / "without")
    assert plain.bos_token_id not in plain("The patient")["input_ids"]


def test_a_model_from_the_config_has_room_for_the_tokenizer(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}")
    tokenizer = load_tokenizer(config)
    architecture = model_config(config, tokenizer)
    assert architecture.vocab_size == 320 and architecture.num_key_value_heads == 2  # 312 rounded up to 64
    model = reference_model(config, architecture)
    assert model.get_input_embeddings().weight.shape == (320, 64)


def test_a_pretrained_model_gets_new_embedding_rows_and_keeps_its_weights(corpus, base_tokenizer, tmp_path):
    """Loaded shard-wise by the trainer's model builder (a world of one): the checkpoint's rows as they
    were, the rows for the added tokens the mean of the checkpoint's rows."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gap_replay.train.parallel import close_world, init_world
    from gap_replay.train.trainer import build_model

    pretrained = tmp_path / "pretrained"
    torch.manual_seed(1)
    original = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128,
                                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2))
    original.save_pretrained(pretrained)
    AutoTokenizer.from_pretrained(base_tokenizer).save_pretrained(pretrained)
    config = config_for(corpus, tmp_path, f"model.pretrained={pretrained}")
    tokenizer = load_tokenizer(config)
    architecture = model_config(config, tokenizer)
    assert architecture.vocab_size == 320
    world = init_world(config)
    try:
        model = build_model(config, architecture, world)
        loaded = {name: parameter.full_tensor() for name, parameter in model.named_parameters()}
    finally:
        close_world(world)
    assert loaded.keys() == original.state_dict().keys()
    for name, tensor in original.state_dict().items():
        if "embed_tokens" in name or "lm_head" in name:
            assert loaded[name].shape == (320, 64)
            assert torch.equal(loaded[name][:300], tensor)
            mean = tensor.double().mean(0).float()
            assert torch.equal(loaded[name][300:], mean.expand(20, -1)), name
        else:
            assert torch.equal(loaded[name], tensor), name


def test_the_whole_model_is_built_from_the_configuration_only(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"model.pretrained={base_tokenizer}")
    with pytest.raises(ValueError, match="shard-wise"):
        reference_model(config, None)


def test_flops_per_token_is_6n_plus_attention(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}")
    model = meta_model(config, model_config(config, load_tokenizer(config)))
    d, ffn, kv, layers, vocab = 64, 128, 2 * 16, 2, 320
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * ffn + 2 * d  # q, k, v, o, SwiGLU, two RMSNorms
    compute = layers * per_layer + d + vocab * d  # + final norm + output projection (embedding lookup: free)
    assert compute_parameters(model) == compute
    assert model_flops_per_token(model, 64) == 6 * compute + 12 * layers * 4 * 16 * 64
    assert flops_per_token(10, 1, 1, 1, 1) == 72


def test_tied_output_projection_counts_once(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}", "model.tie_word_embeddings=true")
    model = meta_model(config, model_config(config, load_tokenizer(config)))
    assert compute_parameters(model) == sum(p.numel() for p in model.parameters())


def test_rotary_buffers_are_recomputed_after_allocation(corpus, base_tokenizer, tmp_path):
    config = config_for(corpus, tmp_path, f"tokenizer.path={base_tokenizer}")
    architecture = model_config(config, load_tokenizer(config))
    model = meta_model(config, architecture)
    model.to_empty(device="cpu")
    restore_computed_buffers(model, torch.device("cpu"))
    expected = reference_model(config, architecture).model.rotary_emb.inv_freq
    assert torch.equal(model.model.rotary_emb.inv_freq, expected)


def test_padded_vocab_size():
    assert padded_vocab_size(32012, 32000, 64) == 32064
    assert padded_vocab_size(31000, 32000, 64) == 32000
    assert padded_vocab_size(300, 0, 64) == 320
