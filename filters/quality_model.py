"""Model-based quality: a fastText classifier of "like the positive set" against "like the negative set".

`gap-replay quality train` (:func:`run_quality_train`) reads two sets of document shards with
pyarrow (no Spark: one pass over the shards, a batch at a time, so memory stays bounded whatever
their size), writes fastText training lines to a temporary directory, trains with
``fasttext.train_supervised``, reports precision and recall of the positive label on a held-out
split, and saves the model. The defaults take guidelines and highly upsampled papers as positives
and replay (general web, books, code) as negatives, the MEDITRON notion of the text worth keeping.

- A document's training line is its label and the same bounded, normalised sample of its text
  that language ID reads (:func:`filters.langid.sample_windows`, the windows joined), so training
  and scoring see the same thing and a long paper costs no more than an abstract.
- The held-out split and the optional cap on documents per class go by a seeded hash of the
  document id: the same inputs and seed give the same split, whatever the order of the shards.
  With one thread (the default) fastText is deterministic too, so the model file is reproducible.

`gap-replay filter` with ``filter.quality_model`` set scores every document that passes the
other checks (:class:`QualityScorer`): ``quality_score`` is the model's probability of the
positive label, and ``filter.min_quality_score`` > 0 drops those below it as ``low_quality_score``.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gap_replay.filters.langid import WINDOW_CHARS, WINDOWS, load_model, sample_windows
from gap_replay.core import storage
from gap_replay.core.shards import InputError, resolve_document_dirs

POSITIVE = "__label__positive"
NEGATIVE = "__label__negative"
PAPERS = "pubmed_papers"
DECISION_THRESHOLD = 0.5  # precision and recall are reported for P(positive) >= this
_READ_COLUMNS = ["id", "source", "text", "upsampling_score"]


def quality_text(text: str, windows: int = WINDOWS, window_chars: int = WINDOW_CHARS) -> str:
    """What the classifier reads of a document: the language-ID sample of its text, on one line."""
    return " ".join(sample_windows(text or "", windows, window_chars))


class QualityScorer:
    """Scores texts with a trained quality model (loaded once per process)."""

    def __init__(self, model_path: str | Path, windows: int = WINDOWS, window_chars: int = WINDOW_CHARS):
        self.model = load_model(model_path)
        self.windows, self.window_chars = windows, window_chars
        if POSITIVE not in self.model.get_labels():
            raise ValueError(f"{model_path} is not a gap-replay quality model (no {POSITIVE} label)")

    def score(self, texts: list[str]) -> list[float]:
        """Probability of the positive label per text."""
        lines = [quality_text(text, self.windows, self.window_chars) for text in texts]
        labels, probabilities = self.model.predict(lines, k=2)
        scores = []
        for names, values in zip(labels, probabilities):
            score = 0.0
            for name, value in zip(names, values):
                if name == POSITIVE:
                    score = float(value)
            scores.append(min(1.0, max(0.0, score)))
        return scores


def split_key(seed: int, document_id: str) -> float:
    """A number in [0, 1) fixed by the seed and the id (the held-out split and the per-class cap use it)."""
    digest = hashlib.blake2b(f"{seed}\0{document_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _shard_files(inputs: Sequence[str]) -> list[str]:
    files = []
    for directory in resolve_document_dirs(inputs):
        files += [directory] if directory.endswith(".parquet") else storage.list_files(directory)
    return files


def _batches(files: list[str], columns: list[str]) -> Iterator[pa.RecordBatch]:
    for uri in files:
        fs, path = storage.resolve(uri)
        shard = pq.ParquetFile(path, filesystem=fs)
        present = [column for column in columns if column in shard.schema_arrow.names]
        for batch in shard.iter_batches(batch_size=1024, columns=present):
            yield batch


class _Selection:
    """Which documents of a set go into training: by source, papers by upsampling score."""

    def __init__(self, sources: Sequence[str], min_upsampling: float | None):
        self.sources = frozenset(sources)
        self.min_upsampling = min_upsampling

    def accepted(self, batch: pa.RecordBatch) -> Iterator[int]:
        sources = batch.column("source").to_pylist()
        scores = (batch.column("upsampling_score").to_pylist() if "upsampling_score" in batch.schema.names
                  else [None] * batch.num_rows)
        for i, (source, score) in enumerate(zip(sources, scores)):
            if self.sources and source not in self.sources:
                continue
            if self.min_upsampling is not None and source == PAPERS and (score is None or score < self.min_upsampling):
                continue
            yield i


def _cap(files: list[str], selection: _Selection, seed: int, max_documents: int) -> float:
    """The largest split key that keeps at most `max_documents` documents (1.0 = keep all)."""
    if max_documents <= 0:
        return 1.0
    largest: list[float] = []  # max-heap (negated) of the smallest keys
    for batch in _batches(files, ["id", "source", "upsampling_score"]):
        ids = batch.column("id").to_pylist()
        for i in selection.accepted(batch):
            key = -split_key(seed, ids[i])
            if len(largest) < max_documents:
                heapq.heappush(largest, key)
            elif key > largest[0]:
                heapq.heapreplace(largest, key)
    return -largest[0] if len(largest) == max_documents else 1.0


def _write_lines(files: list[str], selection: _Selection, label: str, train, held_out, config,
                 counts: dict[str, int]) -> None:
    limit = _cap(files, selection, config.quality_seed, config.quality_max_documents)
    for batch in _batches(files, _READ_COLUMNS):
        ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        for i in selection.accepted(batch):
            key = split_key(config.quality_seed, ids[i])
            if key > limit:
                continue
            line = quality_text(texts[i], config.lid_windows, config.lid_window_chars)
            if not line:
                continue
            validation = split_key(config.quality_seed + 1, ids[i]) < config.quality_validation_fraction
            (held_out if validation else train).write(f"{label} {line}\n")
            counts["validation" if validation else "train"] += 1


def _evaluate(model, path: Path) -> dict:
    true_positive = false_positive = false_negative = true_negative = 0
    with open(path, encoding="utf-8") as lines:
        while True:
            chunk = [line for _, line in zip(range(1024), lines)]
            if not chunk:
                break
            labels = [line.split(" ", 1)[0] for line in chunk]
            texts = [line.split(" ", 1)[1].rstrip("\n") for line in chunk]
            predicted, probabilities = model.predict(texts, k=2)
            for label, names, values in zip(labels, predicted, probabilities):
                score = sum(float(v) for n, v in zip(names, values) if n == POSITIVE)
                positive = score >= DECISION_THRESHOLD
                if label == POSITIVE:
                    true_positive += positive
                    false_negative += not positive
                else:
                    false_positive += positive
                    true_negative += not positive
    predicted_positive = true_positive + false_positive
    actual_positive = true_positive + false_negative
    return {
        "precision": true_positive / predicted_positive if predicted_positive else None,
        "recall": true_positive / actual_positive if actual_positive else None,
        "true_positive": true_positive, "false_positive": false_positive,
        "false_negative": false_negative, "true_negative": true_negative,
    }


def train_quality_model(positives: Sequence[str], negatives: Sequence[str], output: str | Path, config,
                        say: Callable[[str], None] = lambda message: None) -> dict:
    """Train, evaluate and save a quality model; return the report (see run_quality_train).

    `config` is a FilterConfig (its quality_* settings and lid window settings are used).
    """
    config.validate()
    started = time.perf_counter()
    positive_files, negative_files = _shard_files(positives), _shard_files(negatives)
    sets = {
        POSITIVE: (positive_files, _Selection(config.quality_positive_sources, config.quality_positive_min_upsampling)),
        NEGATIVE: (negative_files, _Selection(config.quality_negative_sources, None)),
    }
    output = Path(output)
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="gap-replay-quality-") as scratch:
        train_path, held_out_path = Path(scratch, "train.txt"), Path(scratch, "validation.txt")
        with open(train_path, "w", encoding="utf-8") as train, open(held_out_path, "w", encoding="utf-8") as held_out:
            for label, (files, selection) in sets.items():
                counts[label] = {"train": 0, "validation": 0}
                say(f"quality train: reading {'positive' if label == POSITIVE else 'negative'} documents "
                    f"from {len(files)} shard(s)")
                _write_lines(files, selection, label, train, held_out, config, counts[label])
        for label, name, inputs in ((POSITIVE, "positive", positives), (NEGATIVE, "negative", negatives)):
            if counts[label]["train"] == 0:
                raise InputError(f"no {name} training documents in {', '.join(map(str, inputs))} "
                                 f"(selected by filter.quality_{name}_sources and, for papers, "
                                 f"filter.quality_positive_min_upsampling)")
        say(f"quality train: {counts[POSITIVE]['train']} positive and {counts[NEGATIVE]['train']} negative "
            f"documents; training fastText")
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None
        model = fasttext.train_supervised(
            input=str(train_path), epoch=config.quality_epochs, lr=config.quality_lr,
            wordNgrams=config.quality_word_ngrams, dim=config.quality_dim, thread=config.quality_threads,
            seed=config.quality_seed, bucket=config.quality_buckets if config.quality_word_ngrams > 1 else 0,
            minCount=1, loss="softmax", verbose=0,
        )
        evaluation = _evaluate(model, held_out_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".part")
    model.save_model(str(temporary))
    os.replace(temporary, output)
    return {
        "model": str(output),
        "documents": {"positive": counts[POSITIVE], "negative": counts[NEGATIVE]},
        "threshold": DECISION_THRESHOLD,
        **evaluation,
        "seconds": round(time.perf_counter() - started, 3),
    }


def format_report(report: dict) -> str:
    def number(value):
        return "n/a" if value is None else f"{value:.3f}"

    positive, negative = report["documents"]["positive"], report["documents"]["negative"]
    return "\n".join([
        f"quality model: {report['model']}",
        "documents      train   validation",
        f"  positive  {positive['train']:>8,} {positive['validation']:>12,}",
        f"  negative  {negative['train']:>8,} {negative['validation']:>12,}",
        f"held-out precision {number(report['precision'])}  recall {number(report['recall'])}"
        f"  (positive when P >= {report['threshold']:g})",
    ])


def run_quality_train(context, positives: Sequence[str], negatives: Sequence[str], output: str) -> dict:
    """`gap-replay quality train`: train a quality model from shard directories and save it at `output`.

    `context` is a gap_replay.core.runner.RunContext (its config's [filter] section gives the selection,
    split and fastText settings); `positives` and `negatives` are shard directories or stage/build
    outputs of the document schema. Prints the report (counts, held-out precision and recall) on
    stdout and returns it as a dict with keys model, documents, threshold, precision, recall,
    true_positive, false_positive, false_negative, true_negative, seconds.
    """
    report = train_quality_model(positives, negatives, output, context.config.filter, say=context.say)
    print(format_report(report), flush=True)
    return report


def shippable_copy(path: Path) -> Path:
    """A copy of the model named by its content, for SparkContext.addFile (which registers files by
    name: two different models both called quality.bin could not be shipped in one Spark session)."""
    digest = hashlib.sha256()
    with open(path, "rb") as model:
        while chunk := model.read(1 << 20):
            digest.update(chunk)
    directory = Path(tempfile.gettempdir()) / "gap-replay-models"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"quality-{digest.hexdigest()[:16]}{path.suffix or '.bin'}"
    if not target.is_file():
        temporary = target.with_name(f"{target.name}.{os.getpid()}.part")
        shutil.copyfile(path, temporary)
        os.replace(temporary, target)
    return target
