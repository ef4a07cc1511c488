"""Tokenizers: training (deterministic, with the paper's markers), loading, counting, the CLI."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gap_replay.cli import main
from gap_replay.mixer.synthetic import synthetic_table
from gap_replay.mixer.tokens import (
    END_OF_DOCUMENT,
    MARKER_TOKENS,
    count_tokens,
    iter_corpus_texts,
    save_tokenizer,
    select_texts,
    tokenizer_info,
    train_tokenizer,
    vocabulary_shortfall,
)


@pytest.fixture(scope="module")
def texts():
    table = synthetic_table(300, seed=3, scale=0.1)
    return table.column("text").to_pylist()


def test_training_is_deterministic_and_keeps_the_markers_whole(texts, tmp_path):
    first = train_tokenizer(texts, vocab_size=600)
    second = train_tokenizer(list(reversed(texts)), vocab_size=600)
    assert first.to_str() == second.to_str()
    assert first.get_vocab_size() == 600
    assert first.token_to_id(END_OF_DOCUMENT) == 0
    assert [first.token_to_id(marker) for marker in MARKER_TOKENS] == list(range(1, 11))
    encoding = first.encode("see [BIB_REF]A title, Smith[/BIB_REF] and [FORMULA]x[/FORMULA]", add_special_tokens=False)
    assert {"[BIB_REF]", "[/BIB_REF]", "[FORMULA]", "[/FORMULA]"} <= set(encoding.tokens)
    assert first.decode(encoding.ids, skip_special_tokens=False).startswith("see [BIB_REF]A title")

    directory = tmp_path / "tok"
    save_tokenizer(first, str(directory))
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(str(directory))
    assert loaded.eos_token == END_OF_DOCUMENT and loaded.eos_token_id == 0
    sample = texts[:5]
    assert count_tokens(str(directory), sample) == [len(ids) for ids in loaded(sample, add_special_tokens=False)["input_ids"]]
    assert count_tokens(str(directory / "tokenizer.json"), sample) == count_tokens(str(directory), sample)
    assert tokenizer_info(str(directory)).vocab_size == 600


def test_selection_does_not_depend_on_order(texts):
    assert select_texts(texts, 50) == select_texts(list(reversed(texts)), 50)
    assert len(select_texts(texts, 50)) == 50 and len(select_texts(texts, 0)) == len(texts)


def test_corpus_readers(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"text": "one"}\nnot json\n{"text": "two"}\n'))
    (tmp_path / "b.txt").write_text("three")
    pq.write_table(pa.table({"text": ["four", None, "five"], "other": [1, 2, 3]}), tmp_path / "c.parquet")
    assert sorted(iter_corpus_texts([str(tmp_path)])) == ["five", "four", "one", "three", "two"]


def test_cli_trains_a_tokenizer(texts, tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    assert main(["tokenizer", "train", "--input", str(corpus), "--output", str(tmp_path / "t1"),
                 "--vocab-size", "600"]) == 0
    assert "vocabulary 600" in capsys.readouterr().out
    expected = train_tokenizer(select_texts(texts, 0), vocab_size=600).to_str(pretty=True)
    assert (tmp_path / "t1" / "tokenizer.json").read_text() == expected
    assert main(["tokenizer", "train", "--input", str(corpus), "--output", str(tmp_path / "t2"),
                 "--vocab-size", "10"]) == 2
    assert "--vocab-size" in capsys.readouterr().err


def test_a_vocabulary_smaller_than_asked_for_is_said(texts, tmp_path, capsys):
    corpus = tmp_path / "small.jsonl"
    corpus.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts[:3]))
    assert main(["tokenizer", "train", "--input", str(corpus), "--output", str(tmp_path / "t"),
                 "--vocab-size", "32000"]) == 0
    made = train_tokenizer(select_texts(texts[:3], 0), vocab_size=32_000).get_vocab_size()
    assert made < 32_000
    assert f"tokenizer: asked for a vocabulary of 32,000 tokens, made {made:,}: 3 documents" in capsys.readouterr().err
    assert vocabulary_shortfall(train_tokenizer(texts, vocab_size=600), 600, len(texts)) is None


def test_counts_are_taken_in_batches_bounded_by_characters(texts, tmp_path, monkeypatch):
    """Long documents are encoded a few at a time (a batch's encodings are held together), short ones many at a
    time, and the counts are those of one document at a time, in order."""
    from gap_replay.mixer import tokens

    path = save_tokenizer(train_tokenizer(texts, vocab_size=600), str(tmp_path / "tok"))
    monkeypatch.setattr(tokens, "ENCODE_MAX_CHARS", 10_000)
    long, short = "word " * 1_000, "a short one"  # 5,000 and 11 characters
    mixed = [short, long, long, short, "", long, *[short] * 600, "word " * 3_000]
    batches = list(tokens.encode_batches(mixed))
    assert [len(batch) for batch in batches] == [2, 3, 256, 256, 89, 1] and sum(batches, []) == mixed
    assert all(sum(map(len, batch)) <= 10_000 or len(batch) == 1 for batch in batches)
    one_by_one = [count_tokens(path, [text])[0] for text in mixed]
    assert count_tokens(path, mixed) == one_by_one and one_by_one[1] > 1_000
