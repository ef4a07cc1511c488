"""Synthetic documents of the four parts, for tests and benchmarks of the mixer (no real text).

Lengths follow log-normal distributions around realistic medians (words: guidelines 1,500, abstracts
220, papers 3,000, replay 600; `scale` shrinks them), parts are mixed by the paper's document counts
unless told otherwise, papers carry upsampling scores from MEDITRON's table 10 and in-text markers.
The same arguments give the same documents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gap_replay.core.schema import DOCUMENT_SCHEMA

# The paper's training documents per part (MEDITRON, table 1): 41K, 15.7M, 4.9M, 494K.
PAPER_MIX = {"guidelines": 0.0019, "pubmed_abstracts": 0.7441, "pubmed_papers": 0.2322, "replay": 0.0218}
MEDIAN_WORDS = {"guidelines": 1500, "pubmed_abstracts": 220, "pubmed_papers": 3000, "replay": 600}
SCORES = np.array([0.0, 0.0, 0.0, 0.1, 0.5, 0.5, 1.0, 1.5, 2.0, 2.2, 3.0], dtype=np.float32)
GUIDELINE_TAGS = ("who", "nice", "cdc", "aafp", "wikidoc")
CLOSED_TAGS = {"aafp"}
REPLAY_SETS = ("wikipedia", "arxiv", "c4", "book", "stackexchange")
VOCABULARY = 6000
POOL_WORDS = 1 << 21


def _vocabulary(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=int(rng.integers(2, 11)))) for _ in range(VOCABULARY)]
    words += [word + "." for word in words[:400]] + [word + "," for word in words[:300]] + ["\n\n"] * 30
    return np.array(words, dtype=object)


def synthetic_table(documents: int, seed: int = 0, mix: Mapping[str, float] | None = None,
                    scale: float = 1.0, start: int = 0) -> pa.Table:
    """`documents` documents of the shared schema, parts drawn with the proportions `mix`."""
    rng = np.random.default_rng(seed)
    vocabulary = _vocabulary(np.random.default_rng(12345))
    weights = 1.0 / (np.arange(len(vocabulary)) + 2.7)
    weights /= weights.sum()
    mix = dict(mix or PAPER_MIX)
    parts = sorted(mix)
    probabilities = np.array([mix[part] for part in parts], dtype=float)
    chosen = rng.choice(len(parts), size=documents, p=probabilities / probabilities.sum())
    medians = np.array([MEDIAN_WORDS[part] * scale for part in parts])
    lengths = np.maximum(5, rng.lognormal(np.log(medians[chosen]), 0.6).astype(np.int64))
    # A pool of Zipf-distributed words; a document is a run of it from a random word on.
    pool_words = vocabulary[np.random.default_rng(seed + 1).choice(len(vocabulary), size=POOL_WORDS, p=weights)]
    starts = np.concatenate([[0], np.cumsum([len(word) + 1 for word in pool_words])])
    pool = " ".join(pool_words.tolist())
    first = rng.integers(0, POOL_WORDS - np.minimum(lengths, POOL_WORDS // 2))
    last = np.minimum(first + lengths, POOL_WORDS)
    rows: dict[str, list] = {name: [] for name in DOCUMENT_SCHEMA.names}
    for offset, index in enumerate(chosen):
        number = start + offset
        part = parts[index]
        text = pool[starts[first[offset]]:starts[last[offset]] - 1]
        row = dict.fromkeys(DOCUMENT_SCHEMA.names)
        row.update(source=part, language="en", language_score=0.9)
        digest = hashlib.sha1(f"{seed}:{number}".encode()).hexdigest()[:16]
        if part == "guidelines":
            tag = GUIDELINE_TAGS[number % len(GUIDELINE_TAGS)]
            row.update(id=f"guideline:{tag}:{digest}", subset=tag, title=f"Guideline {number}",
                       license="closed" if tag in CLOSED_TAGS else "open",
                       extra=json.dumps({"audience": "clinician"}))
            text = f"# Guideline {number}\n\n{text}"
        elif part == "pubmed_abstracts":
            row.update(id=f"pmid:{10_000_000 + number}", pmid=10_000_000 + number, year=2000 + number % 23,
                       journal="Journal of Synthetic Medicine")
        elif part == "pubmed_papers":
            score = float(SCORES[number % len(SCORES)])
            row.update(id=f"pmcid:PMC{20_000_000 + number}", pmcid=f"PMC{20_000_000 + number}",
                       upsampling_score=score, publication_types=["Journal Article"], license="cc-by")
            text = (f"# Paper {number}\n\n{text} [BIB_REF]A cited title, Author[/BIB_REF] "
                    f"[FIG_REF]Figure 1: a caption[/FIG_REF] [FORMULA]x = y[/FORMULA]")
        else:
            name = REPLAY_SETS[number % len(REPLAY_SETS)]
            row.update(id=f"replay:{name}:{digest}", subset=name, language=None, language_score=None,
                       extra=json.dumps({"redpajama_set_name": name}))
        row["text"] = text
        for key, value in row.items():
            rows[key].append(value)
    return pa.Table.from_pydict(rows, schema=DOCUMENT_SCHEMA)


def write_corpus(directory: str, table: pa.Table, files: int = 4, order_seed: int | None = None) -> list[str]:
    """Write `table` as `files` Parquet shards under `directory` (rows shuffled by `order_seed` if
    given), like a stage's ``data/`` directory."""
    import os

    os.makedirs(directory, exist_ok=True)
    if order_seed is not None:
        table = table.take(np.random.default_rng(order_seed).permutation(table.num_rows))
    paths = []
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    for index in range(files):
        path = os.path.join(directory, f"part-{index:05d}.parquet")
        pq.write_table(table.slice(bounds[index], bounds[index + 1] - bounds[index]), path, compression="zstd")
        paths.append(path)
    return paths
