"""Documents per second of the filter stage's language step and quality rules, each against a bare baseline
in the same run. Prints one JSON line.

Texts: the real abstracts and PMC papers of ../shared/data (parsed with our parsers), replicated to a few
thousand documents (``--abstract-copies``, ``--paper-copies``), in Arrow batches of 1,024 documents of the
document schema, as the Spark shell hands them to the core.

- ``language``: ours is the stage's step, :meth:`filters.langid.LanguageIdentifier.predict` on each batch's
  text column (normalisation, the long-document windows, one batched fastText call, the vote). The
  baseline is a bare loop over the same texts (already a Python list) calling ``model.predict`` of the same
  ``fasttext`` binding and model on each text's first 4,000 characters with newlines replaced (the least
  fastText accepts; ``predict`` refuses newlines), one document at a time.
- ``quality``: ours is the stage's step, :meth:`filters.quality.QualityRules.check` over each batch's text
  column. The baseline is :func:`plain_rules` below: the same rules with the default thresholds written as
  one straight function with constants inlined, the fastest plain-Python version we could write. Both must
  reach the same decision on every document (checked).
- ``quality_papers``: the same two over the PMC papers alone (long documents, where the rules count word n-grams
  as integer keys rather than word tuples), with milliseconds per paper.
- ``stage_core``: the whole core per batch, :func:`filters.core.filter_batch` (rules, language, Arrow
  outcome batch), for reference.

Each timing is the CPU time of this (single-threaded) process, ``time.process_time``, so that other load
on the machine counts less; the best of ``--repeat`` runs, ours and baseline interleaved. Overhead = ours'
time over the baseline's, minus one; the targets are at most 10%.

    python bench/langid.py [--abstract-copies 4] [--paper-copies 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import re
import time
from collections import Counter
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from gap_replay.filters.core import DocumentFilter, filter_batch
from gap_replay.filters.langid import LanguageIdentifier, load_model
from gap_replay.filters.quality import QualityRules, repeated_positions
from gap_replay.core.schema import documents_to_batch
from gap_replay.pubmed_ingest.jats import parse_jats
from gap_replay.pubmed_ingest.medline import iter_medline

SHARED = ROOT.parent / "shared"
TARGET_OVERHEAD = 0.10
BATCH = 1024


def real_documents(abstract_copies: int, paper_copies: int) -> tuple[list[dict], int, int]:
    abstracts, papers = [], []
    for path in sorted((SHARED / "data" / "pubmed").iterdir()):
        if path.name.endswith((".xml", ".xml.gz")):
            abstracts += [d for d in iter_medline(path, name=path.name) if isinstance(d, dict)]
    for path in sorted((SHARED / "data" / "pmc").iterdir()):
        if path.suffix in (".nxml", ".xml"):
            outcome = parse_jats(path.read_bytes(), name=path.name)
            if isinstance(outcome, dict):
                papers.append(outcome)
    documents = []
    for copy in range(abstract_copies):
        documents += [{**d, "id": f"{d['id']}#{copy}"} for d in abstracts]
    for copy in range(paper_copies):
        documents += [{**d, "id": f"{d['id']}#{copy}"} for d in papers]
    # interleave abstracts and papers the way shards mix them
    documents.sort(key=lambda d: hash(d["id"]) & 0xFFFF)
    return documents, len(abstracts) * abstract_copies, len(papers) * paper_copies


# ---------------------------------------------------------------------------------------------------
# The baseline of the quality rules: the default thresholds (filters.settings.FilterConfig) in one plain function.

_SPAN = re.compile(r"\[(BIB_REF|FIG_REF|FORMULA)\][^\[]*(?:\[(?!/\1\])[^\[]*)*\[/\1\]")
_NON_ALPHA = re.compile(r"(?<!\S)[^\sA-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+(?!\S)")
_HEAD = re.compile(r"#{1,6} [^\n]*\Z")
_STOPS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))
_SPACED = tuple(f" {w} " for w in ("the", "be", "to", "of", "and", "that", "have", "with"))
_ENDS = frozenset(".!?:;\"')]}”’»…。！？")
_BULLETS = ("- ", "* ", "• ", "‣ ", "◦ ", "– ", "+ ")
_KEYWORDS = ("cookie", "by continuing", "javascript", "browser", "newsletter", "terms", "privacy", "skip to",
             "back to top", "jump to", "you are here", "sign ", "log ", "follow us", "share ", "print this",
             "not found", "read more", "click here")
_NOTICE = re.compile(
    r"\b(?:we|this (?:web)?site|our (?:web)?site) uses? cookies\b|\b(?:the )?use of cookies\b"
    r"|\bcookie (?:policy|settings|preferences|consent|notice)\b|\baccept (?:all )?cookies\b"
    r"|\bby continuing to (?:use|browse)\b"
    r"|\bjavascript (?:is |must be |has been )?(?:disabled|required|enabled|not enabled|turned off)\b"
    r"|\b(?:enable|turn on|activate) javascript\b|\bjavascript:|\byour browser (?:does not|doesn't) support\b"
    r"|\bsubscribe to (?:our|the) newsletter\b")
_LINK = re.compile(
    r"\bterms (?:of use|of service|and conditions)\b|\bprivacy (?:policy|notice|statement)\b"
    r"|\bskip to (?:main )?(?:content|navigation)\b|\bback to top\b|\bjump to (?:navigation|search)\b"
    r"|\byou are here\b|\bsign (?:in|up|out)\b|\blog (?:in|out)\b|\bfollow us\b|\bshare (?:this|on)\b"
    r"|\bprint this page\b|\bpage not found\b|\bread more\b|\bclick here\b")
_LOREM = re.compile(r"lorem ipsum", re.IGNORECASE)


def plain_rules(text: str) -> str | None:
    """The rule a text fails first (its name), or None."""
    if "[/" in text:
        text = _SPAN.sub("", text)
        for tag in ("[FIG]", "[/FIG]", "[TABLE]", "[/TABLE]"):
            text = text.replace(tag, "")
    words = text.split()
    n = len(words)
    if n < 20:
        return "too_short"
    chars = sum(map(len, words))
    if not 3.0 <= chars / n <= 10.0:
        return "mean_word_length"
    hashes = 0
    content = []
    for line in map(str.strip, text.split("\n")):
        if line:
            if line[0] == "#":
                rest = line.lstrip("#")
                if len(line) - len(rest) <= 6 and rest[:1] == " ":
                    hashes += len(line) - len(rest)
                    continue
            content.append(line)
    if (text.count("#") - hashes + text.count("...") + text.count("…")) / n > 0.1:
        return "symbol_ratio"
    found = 0
    for word in _SPACED:
        found += text.count(word)
        if found >= 2:
            break
    else:
        if sum(1 for word in words if word.lower() in _STOPS) < 2:
            return "stop_words"
    if sum(map(str.isalpha, words)) < 0.6 * n and 1.0 - len(_NON_ALPHA.findall(text)) / n < 0.6:
        return "alpha_words"
    lines = len(content)
    if lines:
        if sum(1 for line in content if line.startswith(_BULLETS)) / lines > 0.9:
            return "bullet_lines"
        if sum(1 for line in content if line.endswith(("...", "…"))) / lines > 0.3:
            return "ellipsis_lines"
        ends = Counter(line[-1] for line in content)
        if sum(c for e, c in ends.items() if e in _ENDS) / lines < 0.3:
            return "punctuated_lines"
        matched = set()
        short = "\n".join(line for line in content if len(line) <= 300).lower()
        if short and any(k in short for k in _KEYWORDS):
            for i, line in enumerate(content):
                if len(line) <= 300:
                    low = line.lower()
                    if _NOTICE.search(low) or (len(low) <= 80 and _LINK.search(low)):
                        matched.add(i)
        if "psum" in text or "PSUM" in text:
            matched.update(i for i, line in enumerate(content) if _LOREM.search(line))
        if len(matched) / lines > 0.2:
            return "boilerplate_lines"
        for items, name in ((content, "line"), (None, "paragraph")):
            if items is None:
                items = [p for p in map(str.strip, text.split("\n\n")) if p and (p[0] != "#" or not _HEAD.match(p))]
            unique = set(items)
            if len(unique) != len(items):
                if (len(items) - len(unique)) / len(items) > 0.3:
                    return f"duplicate_{name}s"
                counts = Counter(items)
                if sum(len(i) * (c - 1) for i, c in counts.items() if c > 1) / sum(map(len, items)) > 0.2:
                    return f"duplicate_{name}_chars"
    prefix = [0, *accumulate(map(len, words))]
    pair = 0
    for size, limit in ((2, 0.30), (3, 0.28), (4, 0.26)):
        if n > size:
            # bound: top n-gram count <= top 2-gram count; its characters <= the longest run of n words
            if pair and pair * max(map(operator.sub, prefix[size:], prefix[:-size])) <= limit * chars:
                continue
            ((gram, top),) = Counter(zip(*(words[i:] for i in range(size)))).most_common(1)
            if size == 2:
                pair = top
            if top > 1 and top * sum(map(len, gram)) / chars > limit:
                return "top_ngram"
    candidates = range(n)
    for size, limit in ((5, 0.25), (6, 0.24), (7, 0.23), (8, 0.22), (9, 0.21), (10, 0.20)):
        if n < size + 1:
            return None
        if size == 5:
            grams = list(zip(*(words[i:] for i in range(5))))
        else:
            candidates = [p for p in candidates if p + size <= n]
            grams = [tuple(words[p:p + size]) for p in candidates]
        repeated, candidates = repeated_positions(grams, candidates)
        if not repeated:
            return None
        covered, end = 0, 0
        for start in repeated:
            stop = start + size
            if stop > end:
                covered += prefix[stop] - prefix[start if start > end else end]
                end = stop
        if covered / chars > limit:
            return "duplicate_ngrams"
    return None


# ---------------------------------------------------------------------------------------------------


def best_of(runs: list[tuple[str, callable]], repeat: int) -> dict[str, float]:
    best = {name: float("inf") for name, _ in runs}
    for _ in range(repeat):
        for name, run in runs:
            started = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abstract-copies", type=int, default=4)
    parser.add_argument("--paper-copies", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    model_path = os.environ.get("GAP_REPLAY_LID_MODEL") or str(SHARED / "models" / "lid.176.ftz")
    documents, abstracts, papers = real_documents(args.abstract_copies, args.paper_copies)
    batches = [documents_to_batch(documents[i:i + BATCH]) for i in range(0, len(documents), BATCH)]
    texts = [document["text"] for document in documents]
    count = len(texts)

    identifier = LanguageIdentifier(model_path)
    model = load_model(model_path)  # the same fasttext object the identifier uses: same binding, same model
    rules = QualityRules()

    def ours_language():
        for batch in batches:
            identifier.predict(batch.column("text").to_pylist())

    def bare_language():
        predict = model.predict
        for text in texts:
            predict(text[:4000].replace("\n", " "), k=1)

    def ours_quality():
        check = rules.check
        for batch in batches:
            for text in batch.column("text").to_pylist():
                check(text)

    def plain_quality():
        for text in texts:
            plain_rules(text)

    paper_texts = [document["text"] for document in documents if document["source"] == "pubmed_papers"]

    def ours_papers():
        check = rules.check
        for text in paper_texts:
            check(text)

    def plain_papers():
        for text in paper_texts:
            plain_rules(text)

    decider = DocumentFilter(identifier)

    def stage_core():
        for batch in batches:
            filter_batch(batch, decider)

    ours = [failure[0] if failure else None for failure in map(rules.check, texts)]
    plain = [plain_rules(text) for text in texts]
    assert ours == plain, "the bench's plain rules disagree with filters.quality"

    language = best_of([("ours", ours_language), ("bare", bare_language)], args.repeat)
    quality = best_of([("ours", ours_quality), ("plain", plain_quality)], args.repeat)
    on_papers = best_of([("ours", ours_papers), ("plain", plain_papers)], args.repeat)
    core = best_of([("core", stage_core)], max(1, args.repeat - 1))

    def rate(seconds: float) -> float:
        return round(count / seconds, 1)

    language_overhead = language["ours"] / language["bare"] - 1
    quality_overhead = quality["ours"] / quality["plain"] - 1
    print(json.dumps({
        "bench": "langid",
        "documents": count, "abstracts": abstracts, "papers": papers,
        "mean_chars": round(sum(map(len, texts)) / count),
        "language": {"ours_docs_per_s": rate(language["ours"]), "bare_fasttext_docs_per_s": rate(language["bare"]),
                     "overhead": round(language_overhead, 4), "within_target": language_overhead <= TARGET_OVERHEAD},
        "quality": {"ours_docs_per_s": rate(quality["ours"]), "plain_python_docs_per_s": rate(quality["plain"]),
                    "overhead": round(quality_overhead, 4), "within_target": quality_overhead <= TARGET_OVERHEAD,
                    "dropped": dict(Counter(reason for reason in ours if reason))},
        "quality_papers": {
            "papers": len(paper_texts), "mean_chars": round(sum(map(len, paper_texts)) / max(1, len(paper_texts))),
            "ours_docs_per_s": round(len(paper_texts) / on_papers["ours"], 1),
            "plain_python_docs_per_s": round(len(paper_texts) / on_papers["plain"], 1),
            "ours_ms_per_paper": round(1000 * on_papers["ours"] / len(paper_texts), 3),
            "plain_python_ms_per_paper": round(1000 * on_papers["plain"] / len(paper_texts), 3),
            "overhead": round(on_papers["ours"] / on_papers["plain"] - 1, 4)},
        "stage_core_docs_per_s": rate(core["core"]),
        "target_overhead": TARGET_OVERHEAD,
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
