"""A whole `gap-replay build` at two sizes (the second 4x the first): per stage, documents per second
per core, driver and executor peak memory, how time grows with 4x the data, and from the per-core
rates the projected core-hours of the paper's sizes. Prints one JSON line.

The inputs are generated, format-faithful, from the embedded sample's records as templates (their
text replaced by new English-word text, so no two documents repeat):

- PubMed baseline-like files (``pubmedYYnNNNN.xml.gz``, ``--medline-files`` of them) holding
  ``--citations`` citations, plus an update file that revises 1% of them and deletes 0.5%
  (``DeleteCitation``);
- a PMC OA-style bulk package (``.tar.gz`` of JATS ``.nxml``) of ``--articles`` articles, each the
  full text of one of the citations (so the pubmed stage drops those abstracts as superseded);
- RedPajama-style replay JSONL of ``--replay`` documents;
- a guideline site of ``--pages`` article pages behind paginated listings, served on 127.0.0.1 and
  crawled by the build through a source declared in a sources file (no rate limit).

Each size is one `gap-replay build` in a new process (``local[*]``: every core of this machine),
its stderr followed to know the running stage, its process tree sampled every 0.2 s for resident
memory: the driver (the Python process and the JVM, which in local mode hosts the executors too)
and the Python workers of the executors (summed over those alive at once).

    python bench/scale.py [--citations 20000 --articles 2000 --replay 6000 --pages 400] [--factor 4]

The defaults (20k and 80k citations, 2k and 8k articles, 6k and 24k replay documents, 400 and 1,600
guideline pages) take about 3.5 minutes on an idle 2-core machine and stay within 20 minutes on one
shared with other work; 100k and 400k citations (``--citations 100000 --articles 10000 --replay 30000
--pages 250``) take about 11 minutes there when idle. A stage's time includes fixed costs (Spark jobs, the JVM
start in the first stage), so each stage also reports its marginal rate: the extra documents of the
larger run over its extra seconds, per core, which is what more data costs.

Projection: core-hours = documents at the paper's sizes / (marginal documents per second per core)
/ 3600, stage by stage (the larger run's whole-stage rate where the marginal one cannot be taken); the documents reaching filter, dedup and mix are scaled by the
kept shares the run measured. The paper's sizes: 37M citations + 5M papers into the pubmed stage,
46k guideline pages, 420M replay tokens (at the generated replay's tokens per document).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from gap_replay.build import sample_dir
from gap_replay.core.ledger import StageLedger
from gap_replay.filters.langid import MODEL_ENV, MODEL_NAME
from gap_replay.guidelines_scraper.local_site import serve_site, write_listing_pages

STAGES = ("pubmed", "guidelines", "filter", "replay", "dedup", "mix")
TARGET_GROWTH = 4.4
PAPER = {"citations": 37_000_000, "papers": 5_000_000, "guidelines": 46_000, "replay_tokens": 420_000_000}
# Where $GAP_REPLAY_LID_MODEL names no model, the one beside the checkout (as in bench/langid.py and the
# tests), else the build's own lookup: the model cache that `gap-replay models download` fills.
SHARED_LID_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / MODEL_NAME
TOKENS_PER_WORD = 1.33  # Llama-2's tokenizer on English prose, about


# -- generated inputs ---------------------------------------------------------------------------

class Writer:
    """English-word text drawn from the embedded sample's own text, by word frequency."""

    def __init__(self, seed: int):
        root = sample_dir()
        text = " ".join(path.read_text(encoding="utf-8", errors="replace")
                        for folder in ("pubmed", "pmc", "replay") for path in sorted((root / folder).iterdir()))
        text = re.sub(r"<[^>]+>", " ", text)
        self.words = re.findall(r"[a-z]{3,12}", text.lower())
        self.rng = random.Random(seed)

    def sentence(self) -> str:
        words = self.rng.choices(self.words, k=self.rng.randint(10, 24))
        return " ".join(words).capitalize() + "."

    def paragraph(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def title(self) -> str:
        return " ".join(self.rng.choices(self.words, k=self.rng.randint(6, 12))).capitalize()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def medline_records(writer: Writer, pmids: range | list[int]) -> str:
    sample = (sample_dir() / "pubmed" / "pubmed26n0001.xml").read_text(encoding="utf-8")
    templates = re.findall(r"<PubmedArticle>.*?</PubmedArticle>", sample, re.S)
    records = []
    for number, pmid in enumerate(pmids):
        record = templates[number % len(templates)]
        record = re.sub(r'<PMID Version="1">\d+</PMID>', f'<PMID Version="1">{pmid}</PMID>', record, count=1)
        record = re.sub(r'<ArticleId IdType="pubmed">\d+</ArticleId>', f'<ArticleId IdType="pubmed">{pmid}</ArticleId>',
                        record)
        record = re.sub(r"<ArticleTitle>.*?</ArticleTitle>", lambda _: f"<ArticleTitle>{_escape(writer.title())}.</ArticleTitle>",
                        record, count=1, flags=re.S)
        record = re.sub(r"(<AbstractText[^>]*>).*?(</AbstractText>)",
                        lambda m: m.group(1) + _escape(writer.paragraph(writer.rng.randint(2, 4))) + m.group(2),
                        record, flags=re.S)
        records.append(record)
    return "\n".join(records)


def write_medline(directory: Path, writer: Writer, citations: int, files: int, first_pmid: int) -> list[int]:
    directory.mkdir(parents=True)
    head = '<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
    pmids = list(range(first_pmid, first_pmid + citations))
    per_file = -(-citations // files)
    for index in range(files):
        chunk = pmids[index * per_file:(index + 1) * per_file]
        with gzip.open(directory / f"pubmed26n{index + 1:04d}.xml.gz", "wt", encoding="utf-8", compresslevel=1) as out:
            out.write(head + medline_records(writer, chunk) + "\n</PubmedArticleSet>\n")
    revised = pmids[:: 100]  # 1%: a later version of the record
    deleted = pmids[50:: 200]  # 0.5%
    deletions = "".join(f'<PMID Version="1">{pmid}</PMID>' for pmid in deleted)
    with gzip.open(directory / f"pubmed26n{files + 1:04d}.xml.gz", "wt", encoding="utf-8", compresslevel=1) as out:
        out.write(head + medline_records(writer, revised) + f"\n<DeleteCitation>{deletions}</DeleteCitation>\n"
                  "</PubmedArticleSet>\n")
    return pmids


def write_pmc(path: Path, writer: Writer, articles: int, pmids: list[int]) -> None:
    path.parent.mkdir(parents=True)
    templates = [p.read_text(encoding="utf-8") for p in sorted((sample_dir() / "pmc").glob("*.nxml"))]
    step = max(1, len(pmids) // max(1, articles))
    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for number in range(articles):
            pmid, pmc = pmids[(number * step + 7) % len(pmids)], 8_000_000 + number
            article = templates[number % len(templates)]
            article = re.sub(r'<article-id pub-id-type="pmid">\d+</article-id>',
                             f'<article-id pub-id-type="pmid">{pmid}</article-id>', article, count=1)
            article = re.sub(r'<article-id pub-id-type="pmc">\d+</article-id>',
                             f'<article-id pub-id-type="pmc">{pmc}</article-id>', article, count=1)
            article = re.sub(r'<article-id pub-id-type="doi">[^<]+</article-id>',
                             f'<article-id pub-id-type="doi">10.5555/bench.{pmc}</article-id>', article, count=1)
            article = re.sub(r"<article-title>.*?</article-title>",
                             lambda _: f"<article-title>{_escape(writer.title())}</article-title>", article, count=1,
                             flags=re.S)
            article = re.sub(r"<p>(?:(?!</p>).)*</p>", lambda _: f"<p>{_escape(writer.paragraph(writer.rng.randint(3, 6)))}</p>",
                             article, flags=re.S)
            data = article.encode("utf-8")
            member = tarfile.TarInfo(f"oa_package/{pmc % 100:02d}/PMC{pmc}.nxml")
            member.size, member.mtime = len(data), 1_700_000_000
            archive.addfile(member, io.BytesIO(data))


def write_replay(path: Path, writer: Writer, documents: int) -> int:
    path.parent.mkdir(parents=True)
    sets = ("RedPajamaC4", "RedPajamaWikipedia", "RedPajamaArXiv", "RedPajamaBook", "RedPajamaStackExchange")
    words = 0
    with path.open("w", encoding="utf-8") as out:
        for number in range(documents):
            text = "\n\n".join(writer.paragraph(writer.rng.randint(3, 6)) for _ in range(writer.rng.randint(2, 5)))
            words += len(text.split())
            out.write(json.dumps({"text": text, "meta": {"redpajama_set_name": sets[number % len(sets)]}}) + "\n")
    return words


def write_site(root: Path, writer: Writer, pages: int, per_listing: int = 50) -> None:
    (root / "a").mkdir(parents=True)
    for number in range(pages):
        title = _escape(writer.title())
        body = "".join(f"<h2>{_escape(writer.title())}</h2><p>{_escape(writer.paragraph(writer.rng.randint(4, 8)))}</p>"
                       for _ in range(writer.rng.randint(3, 6)))
        (root / "a" / f"{number:05d}").write_text(
            f"<html><head><title>{title}</title></head><body><nav>Home</nav><article><h1>{title}</h1>{body}"
            "</article><footer>Bench guidelines</footer></body></html>", encoding="utf-8")
    write_listing_pages(root, pages, per_listing)


def write_config(workdir: Path, base_url: str) -> Path:
    sources = workdir / "sources.toml"
    sources.write_text(f"""[sources.bench]
name = "Bench guidelines"
base_url = "{base_url}"
seeds = ["{base_url}/list/0"]
discovery = "listing"
listing_pattern = '/list/\\d+$'
link_pattern = '/a/\\d+$'
format = "html"
content_selector = "article"
title_selector = "h1"
min_words = 50
""")
    config = workdir / "build.toml"
    config.write_text(f"""[pubmed]
inputs = ["{workdir / 'inputs' / 'pubmed'}", "{workdir / 'inputs' / 'pmc'}"]

[guidelines]
sources = ["bench"]
sources_config = "{sources}"
request_delay = 0.0
timeout = 10.0
max_retries = 1

[replay]
inputs = ["{workdir / 'inputs' / 'replay'}"]

[mix]
tokenizer_vocab_size = 4000
""")
    return config


# -- measuring ----------------------------------------------------------------------------------

def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command line, resident KiB) of every process."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/status") as status:
                rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError, IndexError):
            continue
        found[int(entry)] = (parent, command, rss)
    return found


class Sampler(threading.Thread):
    """Peak resident memory (MiB) of a process tree, by stage and role: driver (Python + JVM) and executor
    Python workers."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root, self.stage, self.stop = root, "start", threading.Event()
        self.peaks: dict[str, dict[str, float]] = {}

    def run(self) -> None:
        while not self.stop.wait(0.2):
            table = _processes()
            tree, frontier = {self.root}, [self.root]
            while frontier:
                parent = frontier.pop()
                children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent and pid not in tree]
                tree.update(children)
                frontier += children
            driver = workers = 0.0
            for pid in tree:
                if pid not in table:
                    continue
                _, command, rss = table[pid]
                if "pyspark.daemon" in command or "pyspark.worker" in command:
                    workers += rss / 1024
                else:
                    driver += rss / 1024
            peak = self.peaks.setdefault(self.stage, {"driver_mib": 0.0, "executor_python_mib": 0.0})
            peak["driver_mib"] = max(peak["driver_mib"], driver)
            peak["executor_python_mib"] = max(peak["executor_python_mib"], workers)


def run_build(workdir: Path, config: Path) -> dict:
    output = workdir / "build"
    env = {**os.environ, "GAP_REPLAY_SPARK_LOG": str(workdir / "spark.log")}
    if not env.get(MODEL_ENV) and SHARED_LID_MODEL.is_file():
        env[MODEL_ENV] = str(SHARED_LID_MODEL)
    load_before = os.getloadavg()[0]  # other work on the machine slows every stage: report it beside the rates
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "gap_replay.cli", "build", "--config", str(config),
                                "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env=env)
    sampler = Sampler(process.pid)
    sampler.start()
    log = []
    for line in process.stderr:
        log.append(line)
        match = re.match(r"\[gap-replay\] (\w+): running", line)
        if match:
            sampler.stage = match.group(1)
    process.wait()
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"the build failed:\n{''.join(log[-40:])}")
    cores = os.cpu_count() or 1
    stages = {}
    for stage in STAGES:
        ledger = StageLedger.read(str(output if stage == "mix" else output / "stages" / stage))
        stage_seconds = ledger.seconds or 0.0
        stages[stage] = {
            "documents_in": ledger.documents_in, "kept": ledger.kept, "seconds": round(stage_seconds, 2),
            "documents_per_s_per_core": round(ledger.documents_in / stage_seconds / cores, 2) if stage_seconds else None,
            "peak_mib": {key: round(value) for key, value in sampler.peaks.get(stage, {}).items()},
        }
    return {"wall_seconds": round(seconds, 1), "stages": stages,
            "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
            "peak_mib": {key: round(max(p[key] for p in sampler.peaks.values())) for key in ("driver_mib", "executor_python_mib")}}


def one_size(workdir: Path, citations: int, articles: int, replay: int, pages: int, files: int, seed: int) -> dict:
    writer = Writer(seed)
    inputs = workdir / "inputs"
    started = time.perf_counter()
    pmids = write_medline(inputs / "pubmed", writer, citations, files, first_pmid=30_000_001)
    write_pmc(inputs / "pmc" / "oa_comm_xml.PMC008xxxxxx.baseline.2026-01-01.tar.gz", writer, articles, pmids)
    replay_words = write_replay(inputs / "replay" / "redpajama_bench.jsonl", writer, replay)
    write_site(workdir / "site", writer, pages)
    generated = time.perf_counter() - started
    with serve_site(workdir / "site") as site:
        result = run_build(workdir, write_config(workdir, site.base))
    input_bytes = sum(path.stat().st_size for path in inputs.rglob("*") if path.is_file())
    return {"citations": citations, "articles": articles, "replay_documents": replay, "guideline_pages": pages,
            "input_mib": round(input_bytes / 2**20, 1), "generate_seconds": round(generated, 1),
            "replay_words_per_document": round(replay_words / max(1, replay)), **result}


def marginal_rates(small: dict, large: dict, cores: int) -> dict[str, float | None]:
    """Per stage: (extra documents) / (extra seconds) / cores from the smaller run to the larger."""
    rates = {}
    for stage in STAGES:
        extra = large["stages"][stage]["documents_in"] - small["stages"][stage]["documents_in"]
        seconds = large["stages"][stage]["seconds"] - small["stages"][stage]["seconds"]
        rates[stage] = round(extra / seconds / cores, 2) if extra > 0 and seconds > 0 else None
    return rates


def projection(run: dict, marginal: dict[str, float | None]) -> dict:
    """Core-hours of each stage at the paper's sizes, from the marginal per-core rates (else `run`'s)."""
    stages = run["stages"]

    def kept_share(stage: str) -> float:
        return stages[stage]["kept"] / stages[stage]["documents_in"] if stages[stage]["documents_in"] else 1.0

    replay_documents = PAPER["replay_tokens"] / (run["replay_words_per_document"] * TOKENS_PER_WORD)
    pubmed_in = PAPER["citations"] + PAPER["papers"]
    filter_in = pubmed_in * kept_share("pubmed") + PAPER["guidelines"] * kept_share("guidelines")
    dedup_in = filter_in * kept_share("filter") + replay_documents * kept_share("replay")
    documents = {"pubmed": pubmed_in, "guidelines": PAPER["guidelines"], "filter": filter_in,
                 "replay": replay_documents, "dedup": dedup_in, "mix": dedup_in * kept_share("dedup")}
    rates = {stage: marginal.get(stage) or stages[stage]["documents_per_s_per_core"] for stage in STAGES}
    hours = {stage: round(documents[stage] / rates[stage] / 3600, 1) for stage in STAGES if rates[stage]}
    return {"documents": {stage: round(count) for stage, count in documents.items()},
            "documents_per_s_per_core": rates, "core_hours": hours, "total_core_hours": round(sum(hours.values()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citations", type=int, default=20_000)
    parser.add_argument("--articles", type=int, default=2_000)
    parser.add_argument("--replay", type=int, default=6_000)
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--medline-files", type=int, default=4)
    parser.add_argument("--factor", type=int, default=4, help="the larger size is this many times the smaller")
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="gap-scale-"))
    started = time.perf_counter()
    runs = {}
    for label, factor in (("small", 1), ("large", args.factor)):
        runs[label] = one_size(root / label, args.citations * factor, args.articles * factor, args.replay * factor,
                               args.pages * factor, args.medline_files, seed=factor)
    small, large = runs["small"], runs["large"]
    growth = {stage: round(large["stages"][stage]["seconds"] / small["stages"][stage]["seconds"], 2)
              for stage in STAGES if small["stages"][stage]["seconds"]}
    growth["build"] = round(large["wall_seconds"] / small["wall_seconds"], 2)
    marginal = marginal_rates(small, large, os.cpu_count() or 1)
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({
        "bench": "scale", "cores": os.cpu_count(), "factor": args.factor, "runs": runs,
        "growth": growth, "target_growth": TARGET_GROWTH,
        "within_target": all(value <= TARGET_GROWTH for value in growth.values()),
        "marginal_documents_per_s_per_core": marginal, "paper_projection": projection(large, marginal), "seconds": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
