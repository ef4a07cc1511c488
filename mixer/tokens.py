"""Tokenizers: load one (to count tokens), train one (byte-level BPE with the paper's markers).

A tokenizer is named by a *spec*: a Hugging Face ``tokenizer.json`` file (any filesystem pyarrow
opens), a directory holding one, or a directory / hub name that ``transformers.AutoTokenizer`` loads
(e.g. a Llama-2 directory with only ``tokenizer.model``; a Llama-2 tokenizer reproduces the paper's
counts). :func:`load_tokenizer` caches what it loads per process, so a Spark executor's Python
worker loads it once and reuses it for every task it runs.

A document's token count is the number of tokens of its ``text`` with no special tokens added (no
beginning- or end-of-document token); the paper's markers (``[BIB_REF]``...) count one token each
with a tokenizer trained here, where they are special tokens.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gap_replay.core import storage
from gap_replay.core.markers import END_OF_DOCUMENT, MARKER_TOKENS

SPECIAL_TOKENS = (END_OF_DOCUMENT, *MARKER_TOKENS)
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
ENCODE_BATCH = 256
# Characters per encode call: an encoding holds some 50 bytes per token, so 256 long papers at once (30M
# characters) took 436 MiB of a worker's memory; batches of at most 1M characters, 108 MiB, at the same speed.
ENCODE_MAX_CHARS = 1 << 20


class TokenizerError(ValueError):
    """A tokenizer spec names nothing loadable."""


@dataclass(frozen=True)
class TokenizerInfo:
    """What the manifest records about the tokenizer that counted the tokens."""

    spec: str
    sha256: str
    vocab_size: int

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "sha256": self.sha256, "vocab_size": self.vocab_size}


def _json_uri(spec: str) -> str | None:
    """The tokenizer.json a spec names, if it names one."""
    if spec.endswith(".json") and storage.exists(spec):
        return spec
    candidate = storage.join(spec, TOKENIZER_FILE)
    if storage.exists(candidate):
        return candidate
    return None


class _Counter:
    """Counts tokens with a `tokenizers.Tokenizer` or a `transformers` tokenizer."""

    def __init__(self, spec: str):
        self.spec = spec
        uri = _json_uri(spec)
        if uri is not None:
            from tokenizers import Tokenizer

            text = storage.read_text(uri)
            self.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            self.backend = Tokenizer.from_str(text)
            self.vocab_size = self.backend.get_vocab_size(with_added_tokens=True)
            self._hf = None
            return
        looks_like_path = spec.startswith(("/", ".", "~")) or "://" in spec or spec.endswith(".json")
        if looks_like_path and not storage.exists(spec):
            raise TokenizerError(f"mix.tokenizer {spec!r}: not found")
        try:
            from transformers import AutoTokenizer

            hf = AutoTokenizer.from_pretrained(spec)
        except Exception as error:  # noqa: BLE001 - anything here means "not a tokenizer"
            raise TokenizerError(f"mix.tokenizer {spec!r}: no tokenizer.json there and transformers cannot load it "
                                 f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
        self._hf = hf
        self.backend = getattr(hf, "backend_tokenizer", None)
        self.vocab_size = len(hf)
        if self.backend is not None:
            self.digest = hashlib.sha256(self.backend.to_str().encode("utf-8")).hexdigest()
        else:
            self.digest = hashlib.sha256(json.dumps(hf.get_vocab(), sort_keys=True).encode()).hexdigest()

    def count(self, texts: Sequence[str]) -> list[int]:
        if self.backend is not None:
            encode = getattr(self.backend, "encode_batch_fast", None) or self.backend.encode_batch
            counts: list[int] = []
            for batch in encode_batches(texts):
                counts.extend(len(encoding) for encoding in encode(batch, add_special_tokens=False))
            return counts
        return [len(ids) for ids in self._hf(list(texts), add_special_tokens=False)["input_ids"]]


def encode_batches(texts: Sequence[str]) -> Iterator[list[str]]:
    """`texts` in order, in runs of at most ENCODE_BATCH texts and ENCODE_MAX_CHARS characters (a longer
    text alone)."""
    batch: list[str] = []
    size = 0
    for text in texts:
        if batch and (len(batch) == ENCODE_BATCH or size + len(text) > ENCODE_MAX_CHARS):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += len(text)
    if batch:
        yield batch


def spec_digest(spec: str) -> str:
    """sha256 of the tokenizer.json a spec names ("" when it names a transformers directory or name)."""
    uri = _json_uri(spec) if spec else None
    if uri is None:
        return ""
    return hashlib.sha256(storage.read_text(uri).encode("utf-8")).hexdigest()


@lru_cache(maxsize=4)
def load_tokenizer(spec: str, digest: str = "") -> _Counter:
    """The tokenizer named by `spec`, loaded once per process (`digest` tells apart different files
    written at the same path over a process's life)."""
    if not spec:
        raise TokenizerError("no tokenizer configured (mix.tokenizer)")
    counter = _Counter(spec)
    if digest and counter.digest != digest:
        raise TokenizerError(f"tokenizer {spec} changed while in use (sha256 {counter.digest}, expected {digest})")
    return counter


def count_tokens(spec: str, texts: Sequence[str]) -> list[int]:
    """Token counts of `texts` (no special tokens added)."""
    return load_tokenizer(spec, spec_digest(spec)).count(texts)


def tokenizer_info(spec: str) -> TokenizerInfo:
    counter = load_tokenizer(spec, spec_digest(spec))
    return TokenizerInfo(spec, counter.digest, counter.vocab_size)


def token_counter(spec: str, digest: str = "", text_column: str = "text", output_column: str = "_tokens",
                  keep: Sequence[str] = ()) -> Callable[[Any], Any]:
    """A function of a table of documents: a table of its `keep` columns plus the token count of `text_column`
    (the tokenizer loaded once per Python worker)."""
    import pyarrow as pa

    def count(batch):
        counter = load_tokenizer(spec, digest)  # cached: one load per Python worker process
        texts = batch.column(text_column).to_pylist()
        counts = pa.array(counter.count([text or "" for text in texts]), pa.int64())
        columns = [batch.column(name) for name in keep] + [counts]
        return pa.Table.from_arrays(columns, names=[*keep, output_column])

    return count


# -- training -------------------------------------------------------------------------------------


def new_bpe_tokenizer():
    """An untrained byte-level BPE tokenizer (GPT-2 style: bytes, no unknown token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int = 32_000, min_frequency: int = 2,
                    length: int | None = None):
    """Train a byte-level BPE tokenizer on `texts`, with the end-of-document token (id 0) and the
    paper's ten markers (ids 1-10) as special tokens. Same texts and settings give the same tokenizer."""
    from tokenizers import pre_tokenizers, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256} (special tokens + 256 bytes)")
    tokenizer = new_bpe_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=length)
    return tokenizer


def vocabulary_shortfall(tokenizer, asked: int, documents: int) -> str | None:
    """A line saying the trained vocabulary is smaller than asked for (BPE stops when no pair of the
    texts is frequent enough to merge), or None when it has the size asked for."""
    made = tokenizer.get_vocab_size()
    if made >= asked:
        return None
    return (f"tokenizer: asked for a vocabulary of {asked:,} tokens, made {made:,}: {documents:,} documents "
            f"hold too few frequent pairs for more merges (give more text, or ask for fewer tokens)")


def save_tokenizer(tokenizer, directory: str) -> str:
    """Write ``tokenizer.json`` and a ``tokenizer_config.json`` that `transformers` reads
    (``AutoTokenizer.from_pretrained(directory)``); returns the tokenizer.json URI."""
    fs, path = storage.resolve(directory)
    fs.create_dir(path, recursive=True)
    uri = storage.join(directory, TOKENIZER_FILE)
    storage.write_text(uri, tokenizer.to_str(pretty=True))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": END_OF_DOCUMENT,
        "additional_special_tokens": list(MARKER_TOKENS),
        "model_max_length": 1_000_000_000,
        "clean_up_tokenization_spaces": False,
    }
    storage.write_text(storage.join(directory, TOKENIZER_CONFIG_FILE), json.dumps(config, indent=2) + "\n")
    return uri


def select_texts(texts: Iterable[str], max_documents: int) -> list[str]:
    """A deterministic sample of at most `max_documents` texts, whatever their order: those with the
    smallest sha1, in that order (all of them, sorted the same way, when `max_documents` is 0)."""
    keyed = ((hashlib.sha1(text.encode("utf-8")).digest(), text) for text in texts if text)
    if max_documents > 0:
        chosen = heapq.nsmallest(max_documents, keyed)
    else:
        chosen = sorted(keyed)
    return [text for _, text in chosen]


CORPUS_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json", ".txt", ".txt.gz")


def iter_corpus_texts(inputs: Sequence[str]) -> Iterator[str]:
    """Texts of a corpus for training: stage or build outputs and Parquet files (the `text` column),
    JSONL files (the `text` field; plain, gzip or zstd) and plain text files (one document per file)."""
    import pyarrow.parquet as pq

    from gap_replay.core.ingest import expand_inputs, open_input
    from gap_replay.core.shards import resolve_document_dirs
    from gap_replay.core.ingest import open_text_lines

    for uri in inputs:
        if storage.exists(storage.join(uri, "data")) or storage.exists(storage.join(uri, "train")):
            files = [file for directory in resolve_document_dirs([uri]) for file in storage.list_files(directory)]
        else:
            files = expand_inputs([uri], CORPUS_SUFFIXES)
        for file in files:
            if file.endswith(".parquet"):
                fs, path = storage.resolve(file)
                parquet = pq.ParquetFile(path, filesystem=fs)
                for batch in parquet.iter_batches(columns=["text"], batch_size=1024):
                    yield from (text for text in batch.column(0).to_pylist() if text)
                continue
            with open_input(file) as stream:
                lines = open_text_lines(stream)
                if ".json" in os.path.basename(file):
                    for line in lines:
                        try:
                            record = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if isinstance(record, dict) and isinstance(record.get("text"), str) and record["text"].strip():
                            yield record["text"]
                else:
                    text = lines.read()
                    if text.strip():
                        yield text
