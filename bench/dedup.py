"""Near-duplicate detection against datasketch and datatrove, on the same corpus. Prints one JSON line.

The corpus: the real PubMed abstracts of ../shared/data/pubmed, then documents made of random sentences
of those abstracts (so every document reads like an abstract and two documents share little), and
planted near-duplicates: copies of earlier documents (some copies of copies) with random word
substitutions, insertions and deletions, the number of edits drawn so that the Jaccard similarities of
the 5-word shingle sets spread over about 0.5-1.0. Parts (abstracts, guidelines, replay) are assigned at
random, so duplicates cross parts.

Ground truth: the exact Jaccard similarity of the shingle sets (the definition of dedup/minhash.py) of
every planted pair and of every pair that any method puts in one cluster, computed with Python sets;
two documents are duplicates when they are in the same connected component of the pairs at or above
the threshold.
Each method's result is read the same way: its reported pairs, closed into clusters; precision and
recall are over the pairs of documents that share a cluster.

Methods:
- ours: `gap-replay dedup` (dedup.job.run_dedup) on Spark `local[*]`: all rules, default settings
  (verification on); time = the stage (read shards, write outputs), Spark's start-up reported apart.
- datasketch: `MinHash` (num_perm 128, default affine32 scheme and SHA-1 hash) + `MinHashLSH`
  (threshold, default weights) in this process, same shingles as the ground truth; every document
  inserted then queried.
- datatrove: its four MinHash steps (signatures, buckets, clusters, filter; default MinhashConfig),
  `LocalPipelineExecutor` with 2 workers, on JSONL copies of the corpus; run with the interpreter of
  a separate environment, created with

      python -m venv --system-site-packages /tmp/bench-venv
      /tmp/bench-venv/bin/pip install datatrove spacy orjson 'xxhash<4' tokenizers

  (or `--setup-peers`); `--peers-python` names another interpreter.
- signatures on one core: ours (`MinHasher.signatures` from raw text) against datasketch's
  `update_batch` (shingles prepared outside the timing; and with shingling, for reference), in
  documents per CPU-second of this process.

Each method reports wall time (`docs_per_s`, and per core: ours uses every core, datasketch one,
datatrove its workers) and its CPU time (`cpu_seconds`, `docs_per_cpu_s`: the process and its
descendants: Spark's JVM and Python workers, datatrove's workers). On a machine shared with other work
the wall times of a job that needs all cores suffer most; CPU time is the figure that load moves least,
and `per_cpu_second_speedup_vs_<peer>` compares it.

    python bench/dedup.py [--documents 100000] [--million] [--skip-peers] [--setup-peers] [--profile] [--workdir DIR]

`--million` runs ours alone on 1,000,000 documents and reports time and peak memory. Every run reports ours'
peak memory (`peak_mib`) as bench/scale.py measures it, sampled every 0.2 s: the JVM's resident set, the Python
workers' proportional set size (their shared pages counted once), the largest worker's resident set, and per
executor core (JVM plus workers over the cores; the JVM's heap is Spark's default 1 GiB).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scale bench's sampler, beside this file

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "pubmed"
PEERS_PYTHON = "/tmp/bench-venv/bin/python"
# datatrove's MinHash steps import `tokenizers` (its word tokenizer) without declaring it for that use;
# a fresh environment without it fails with "No module named 'tokenizers'".
PEER_PACKAGES = ("datatrove", "spacy", "orjson", "xxhash<4", "tokenizers")
THRESHOLD = 0.8
SHARD_DOCUMENTS = 50_000
SOURCES = ("pubmed_abstracts", "guidelines", "replay", "pubmed_papers")


# --------------------------------------------------------------------------------------------------
# Corpus.

def real_abstracts() -> list[dict]:
    from gap_replay.pubmed_ingest.medline import iter_medline

    seen, documents = set(), []
    for path in sorted(glob.glob(str(SHARED / "*.xml*"))):
        for outcome in iter_medline(path, name=os.path.basename(path)):
            if isinstance(outcome, dict) and outcome["id"] not in seen and len(outcome["text"].split()) >= 40:
                seen.add(outcome["id"])
                documents.append(outcome)
    return documents


def edit(text: str, target: float, vocabulary: list[str], rng: random.Random, ngram: int = 5) -> str:
    """Random word edits, about as many as bring the shingle Jaccard similarity to `target`."""
    words = text.split()
    shingles = max(1, len(words) - ngram + 1)
    edits = max(1, round(shingles * (1 - target) / (ngram * (1 + target)) * rng.uniform(0.8, 1.2)))
    for _ in range(edits):
        kind, position = rng.random(), rng.randrange(len(words))
        if kind < 0.6:
            words[position] = rng.choice(vocabulary)
        elif kind < 0.8 and len(words) > ngram + 1:
            del words[position]
        else:
            words.insert(position, rng.choice(vocabulary))
    return " ".join(words)


def shingle_set(text: str) -> set[bytes]:
    from gap_replay.dedup.minhash import shingles

    return set(shingles(text))


def exact_jaccard(left: str, right: str) -> float:
    a, b = shingle_set(left), shingle_set(right)
    return len(a & b) / len(a | b) if a | b else 1.0


def generate(documents: int, workdir: Path, seed: int = 7, planted_share: float = 0.15, jsonl: bool = True):
    """Write the corpus as Parquet shards (and JSONL for datatrove); returns (ids, planted) where planted
    maps (copy id, source id) to the pair's exact Jaccard similarity."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gap_replay.core.schema import documents_to_batch, make_document

    rng = random.Random(seed)
    abstracts = real_abstracts()
    sentences = sorted({s for d in abstracts for s in re.split(r"(?<=[.!?])\s+", d["text"]) if len(s.split()) >= 4})
    vocabulary = sorted({w for s in sentences for w in s.split()})
    parquet_dir, jsonl_dir = workdir / "corpus", workdir / "corpus-jsonl"
    parquet_dir.mkdir(parents=True)
    jsonl_dir.mkdir(parents=True)
    jsonl_files = [open(jsonl_dir / f"part-{i}.jsonl", "w") for i in range(2)] if jsonl else []
    recent: list[tuple[str, str]] = []  # (id, text) of recent documents, the ones copies are made from
    ids: list[str] = []
    planted: dict[tuple[str, str], float] = {}
    batch: list[dict] = []
    shard = 0

    def emit(document: dict) -> None:
        nonlocal batch, shard
        batch.append(document)
        ids.append(document["id"])
        if jsonl_files:
            stream = jsonl_files[(len(ids) - 1) * len(jsonl_files) // documents]
            stream.write(json.dumps({"id": document["id"], "text": document["text"]}) + "\n")
        if len(batch) >= SHARD_DOCUMENTS:
            pq.write_table(pa.Table.from_batches([documents_to_batch(batch)]), parquet_dir / f"part-{shard:05d}.parquet")
            batch, shard = [], shard + 1

    for index in range(documents):
        if index < len(abstracts):
            document = dict(abstracts[index])
        elif recent and rng.random() < planted_share / (1 - len(abstracts) / documents):
            source_id, source_text = rng.choice(recent)
            text = edit(source_text, rng.uniform(0.5, 1.0), vocabulary, rng)
            document = make_document(id=f"planted:{index}", source=rng.choice(SOURCES), text=text)
            planted[document["id"], source_id] = exact_jaccard(text, source_text)
        else:
            text = " ".join(rng.sample(sentences, rng.randint(6, 12)))
            document = make_document(id=f"synthetic:{index}", source=rng.choice(SOURCES[:3]), text=text)
        emit(document)
        recent.append((document["id"], document["text"]))
        if len(recent) > 20_000:
            recent = recent[-10_000:]
    if batch:
        pq.write_table(pa.Table.from_batches([documents_to_batch(batch)]), parquet_dir / f"part-{shard:05d}.parquet")
    for stream in jsonl_files:
        stream.close()
    return ids, planted


def texts_of(workdir: Path, wanted: set[str]) -> dict[str, str]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(workdir / "corpus"), format="parquet")
    table = dataset.to_table(columns=["id", "text"], filter=pc.field("id").isin(sorted(wanted)))
    return dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist()))


# --------------------------------------------------------------------------------------------------
# Evaluation.

class UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        parent = self.parent
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def clusters(self) -> list[list]:
        groups = defaultdict(list)
        for node in self.parent:
            groups[self.find(node)].append(node)
        return [sorted(members) for members in groups.values() if len(members) > 1]


def co_cluster_pairs(pairs) -> set[tuple[str, str]]:
    forest = UnionFind()
    for a, b in pairs:
        forest.union(a, b)
    return {(m[i], m[j]) for m in forest.clusters() for i in range(len(m)) for j in range(i + 1, len(m))}


def evaluate(methods: dict[str, set], planted: dict, workdir: Path) -> tuple[dict, dict]:
    """Precision/recall of each method's clusters against the pooled exact-Jaccard components."""
    similarity = {tuple(sorted(pair)): value for pair, value in planted.items()}
    # The pool: planted pairs and every pair that a method puts in one cluster (not only the pairs it
    # reports: a chain A-B-C reported as (A, B), (A, C) needs (B, C) to be judged).
    clustered = {name: co_cluster_pairs(pairs) for name, pairs in methods.items()}
    unknown = {tuple(sorted(pair)) for pairs in clustered.values() for pair in pairs} - set(similarity)
    if unknown:
        texts = texts_of(workdir, {doc for pair in unknown for doc in pair})
        for a, b in unknown:
            similarity[a, b] = exact_jaccard(texts[a], texts[b])
    truth = co_cluster_pairs(pair for pair, value in similarity.items() if value >= THRESHOLD)
    scores = {}
    for name, pairs in methods.items():
        found = clustered[name]
        hits = len(found & truth)
        scores[name] = {"precision": round(hits / len(found), 4) if found else 1.0,
                        "recall": round(hits / len(truth), 4) if truth else 1.0,
                        "reported_pairs": len(pairs), "co_cluster_pairs": len(found)}
    pool = {"pooled_pairs": len(similarity), "true_pairs": len(truth),
            "planted_pairs": len(planted),
            "planted_at_or_above_threshold": sum(value >= THRESHOLD for value in planted.values())}
    return scores, pool


# --------------------------------------------------------------------------------------------------
# Methods.

def process_tree_cpu() -> float:
    """CPU seconds used so far by this process and its descendants: the live ones read from /proc (with
    what their own finished children used), the finished ones from getrusage. Differences of two calls
    give a method's CPU time, a figure that other load on the machine barely changes (unlike wall time)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    pending = _children(os.getpid())
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / ticks  # utime stime cutime cstime
        except OSError:
            continue
        pending += _children(pid)
    return total


def _children(pid: int) -> list[int]:
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as stream:
                children += [int(child) for child in stream.read().split()]
    except OSError:
        pass
    return children


def cpu_by_process() -> tuple[dict, dict]:
    """CPU seconds so far of this process's descendants by command name (java, python), and of the
    JVMs' threads by name, digits folded (``C# CompilerThre``: the JIT compilers, ``Executor task l``:
    Spark's tasks)."""
    ticks, kinds, threads = os.sysconf("SC_CLK_TCK"), defaultdict(float), defaultdict(float)
    pending = _children(os.getpid())
    while pending:
        pid = pending.pop()
        pending += _children(pid)
        try:
            name = open(f"/proc/{pid}/comm").read().strip()
            kinds[name] += sum(map(int, open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[11:15])) / ticks
            if name == "java":
                for task in os.listdir(f"/proc/{pid}/task"):
                    stat = open(f"/proc/{pid}/task/{task}/stat").read()
                    thread = re.sub(r"[0-9]+", "#", stat[stat.index("(") + 1:stat.rindex(")")])
                    threads[thread] += sum(map(int, stat.rsplit(")", 1)[1].split()[11:13])) / ticks
        except OSError:
            continue
    return kinds, threads


def spark_profile(spark, before: tuple[dict, dict]) -> dict:
    """Where the stage's seconds went (``--profile``): wall seconds of Spark's jobs by description (the
    stage names its steps, see dedup.job._describe) from the UI's REST API, executor run and CPU time by
    description, and CPU seconds by process and JVM thread since `before` (a :func:`cpu_by_process`)."""
    import urllib.request
    from datetime import datetime

    def get(path):
        url = f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{spark.sparkContext.applicationId}/{path}"
        with urllib.request.urlopen(url) as response:
            return json.load(response)

    def when(text):
        return datetime.strptime(text.replace("GMT", ""), "%Y-%m-%dT%H:%M:%S.%f")

    jobs, tasks = defaultdict(float), defaultdict(lambda: [0.0, 0.0])
    for job in get("jobs"):
        if "completionTime" in job:
            jobs[job.get("description") or job["name"]] += (when(job["completionTime"])
                                                            - when(job["submissionTime"])).total_seconds()
    for stage in get("stages"):
        if stage.get("status") == "COMPLETE":
            step = tasks[stage.get("description") or stage["name"]]
            step[0] += stage["executorRunTime"] / 1000
            step[1] += stage["executorCpuTime"] / 1e9
    kinds, threads = cpu_by_process()
    top = sorted(((name, seconds - before[1].get(name, 0.0)) for name, seconds in threads.items()),
                 key=lambda item: -item[1])[:6]
    return {"job_seconds": {name: round(value, 1) for name, value in sorted(jobs.items(), key=lambda i: -i[1])},
            "task_seconds_run_jvm_cpu": {name: [round(run, 1), round(cpu, 1)] for name, (run, cpu) in
                                         sorted(tasks.items(), key=lambda i: -i[1][0])},
            "cpu_seconds_by_process": {name: round(seconds - before[0].get(name, 0.0), 1)
                                       for name, seconds in kinds.items() if seconds - before[0].get(name, 0.0) >= 0.05},
            "cpu_seconds_by_jvm_thread": {name: round(seconds, 1) for name, seconds in top}}


def run_ours(workdir: Path, profile: bool = False) -> dict:
    import pyarrow.parquet as pq

    from scale import Sampler  # here, not at the top: the datatrove worker runs this file without gap_replay

    from gap_replay.dedup.job import lsh_bands, run_dedup
    from gap_replay.stages import load_config
    from gap_replay.core.runner import RunContext

    config = load_config()
    config.spark.ui = config.spark.ui or profile  # the profile reads the UI's REST API
    context = RunContext(config, stream=open(os.devnull, "w"))
    started = time.perf_counter()
    context.spark  # noqa: B018 - start Spark outside the timed stage
    spark_start = time.perf_counter() - started
    cores = context.spark.sparkContext.defaultParallelism  # local[*]: every core of this machine
    memory = Sampler(os.getpid(), cores)  # the scale bench's: memory by role, the Python workers' as PSS
    memory.stage = "dedup"
    memory.start()
    try:
        started, cpu, before = time.perf_counter(), process_tree_cpu(), cpu_by_process()
        ledger = run_dedup(context, [str(workdir / "corpus")], str(workdir / "ours"))
        seconds, cpu = time.perf_counter() - started, process_tree_cpu() - cpu
    finally:
        memory.stop.set()
        memory.join()
    peak = {key: round(value) for key, value in memory.peaks.get("dedup", {}).items()}
    profiled = {"profile": spark_profile(context.spark, before)} if profile else {}
    pairs = set()
    for row in pq.read_table(workdir / "ours" / "clusters").to_pylist():
        pairs |= {(row["kept_id"], member) for member in row["member_ids"] if member != row["kept_id"]}
    drops = pq.read_table(workdir / "ours" / "drops").to_pylist()
    pairs |= {(row["id"], row["detail"]) for row in drops if row["reason"] == "exact_duplicate"}
    context.spark.stop()
    bands, rows = lsh_bands(config.dedup)
    return {"seconds": round(seconds, 2), "docs_per_s": round(ledger.documents_in / seconds, 1), "cores": cores,
            "docs_per_s_per_core": round(ledger.documents_in / seconds / cores, 1),
            "cpu_seconds": round(cpu, 1), "docs_per_cpu_s": round(ledger.documents_in / cpu, 1),
            "spark_start_seconds": round(spark_start, 2), "peak_mib": peak,
            "dropped": dict(ledger.dropped), "bands": bands, "rows": rows, "num_perm": config.dedup.num_perm,
            **profiled, "_pairs": pairs}


def run_datasketch(workdir: Path, ids: list[str]) -> dict:
    import pyarrow.dataset as ds
    from datasketch import MinHash, MinHashLSH

    from gap_replay.dedup.minhash import shingles

    table = ds.dataset(str(workdir / "corpus"), format="parquet").to_table(columns=["id", "text"])
    texts = table.column("text").to_pylist()
    names = table.column("id").to_pylist()
    started, cpu = time.perf_counter(), time.process_time()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=128)
    sketches = []
    for name, text in zip(names, texts):
        sketch = MinHash(num_perm=128)
        sketch.update_batch(shingles(text))
        lsh.insert(name, sketch)
        sketches.append(sketch)
    pairs = set()
    for name, sketch in zip(names, sketches):
        pairs |= {(name, other) for other in lsh.query(sketch) if other != name}
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": round(seconds, 2), "docs_per_s": round(len(texts) / seconds, 1), "cores": 1,
            "docs_per_s_per_core": round(len(texts) / seconds, 1), "cpu_seconds": round(cpu, 1),
            "docs_per_cpu_s": round(len(texts) / cpu, 1), "bands": lsh.b,
            "rows": lsh.r, "_pairs": pairs}


def run_datatrove(workdir: Path, ids: list[str], python: str) -> dict:
    if not os.path.exists(python):
        return {"skipped": f"{python} not found (see --setup-peers)"}
    result = subprocess.run([python, __file__, "--datatrove-worker", str(workdir)], capture_output=True, text=True)
    if result.returncode != 0:
        return {"skipped": "datatrove failed: " + result.stderr.strip().splitlines()[-1][:300]}
    report = json.loads(result.stdout.strip().splitlines()[-1])
    pairs = {(ids[a], ids[b]) for a, b in report.pop("pairs")}
    return {**report, "docs_per_s": round(len(ids) / report["seconds"], 1),
            "docs_per_cpu_s": round(len(ids) / report["cpu_seconds"], 1), "_pairs": pairs}


PEERS_CHECK = ("import tokenizers\n"
               "from datatrove.pipeline.dedup.minhash import MinhashDedupSignature\n"
               "from datatrove.executor import LocalPipelineExecutor")


def setup_peers(python: str) -> None:
    """Make `python`'s environment able to run the datatrove worker: created (with this environment's
    packages visible) when missing, PEER_PACKAGES installed when datatrove's MinHash steps do not import
    there (a fresh environment lacked ``tokenizers``, which datatrove imports but does not require)."""
    venv = Path(python).parents[1]
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    if subprocess.run([python, "-c", PEERS_CHECK], capture_output=True).returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        check = subprocess.run([python, "-c", PEERS_CHECK], capture_output=True, text=True)
        if check.returncode != 0:
            raise SystemExit("--setup-peers: datatrove still does not import: " + check.stderr.strip()[-300:])


def datatrove_worker(workdir: Path) -> None:
    """Runs under the peers' interpreter: datatrove's MinHash pipeline; prints seconds and pairs."""
    import logging
    import struct

    from loguru import logger

    logger.remove()
    logging.disable(logging.CRITICAL)
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    base = workdir / "datatrove"
    shutil.rmtree(base, ignore_errors=True)
    config = MinhashConfig()
    source = str(workdir / "corpus-jsonl")
    files = sorted(os.listdir(source))
    counts = [sum(1 for _ in open(os.path.join(source, name))) for name in files]
    started, cpu = time.perf_counter(), process_tree_cpu()
    common = {"workers": 2, "skip_completed": False}
    LocalPipelineExecutor([JsonlReader(source), MinhashDedupSignature(str(base / "signatures"), config=config)],
                          tasks=len(files), logging_dir=str(base / "logs" / "1"), **common).run()
    LocalPipelineExecutor([MinhashDedupBuckets(str(base / "signatures"), str(base / "buckets"), config=config)],
                          tasks=config.num_buckets, logging_dir=str(base / "logs" / "2"), **common).run()
    LocalPipelineExecutor([MinhashDedupCluster(str(base / "buckets"), str(base / "remove"), config=config)],
                          tasks=1, logging_dir=str(base / "logs" / "3"), **common).run()
    LocalPipelineExecutor([JsonlReader(source), MinhashDedupFilter(str(base / "remove")),
                           JsonlWriter(str(base / "output"))],
                          tasks=len(files), logging_dir=str(base / "logs" / "4"), **common).run()
    seconds, cpu = time.perf_counter() - started, process_tree_cpu() - cpu
    offsets = [sum(counts[:rank]) for rank in range(len(counts))]
    pairs = []
    for name in sorted(os.listdir(base / "buckets")):
        data = open(base / "buckets" / name, "rb").read()
        for f1, d1, f2, d2 in struct.iter_unpack("<4I", data):
            pairs.append((offsets[f1] + d1, offsets[f2] + d2))
    print(json.dumps({"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 1), "workers": 2, "bands": config.num_buckets,
                      "rows": config.hashes_per_bucket, "pairs": pairs}))


def signature_throughput(workdir: Path, documents: int = 20_000) -> dict:
    """Documents per CPU-second on one core: ours from raw text, datasketch's update_batch."""
    import pyarrow.dataset as ds
    from datasketch import MinHash

    from gap_replay.dedup.minhash import MinHasher, shingles

    texts = ds.dataset(str(workdir / "corpus"), format="parquet").head(documents, columns=["text"]).column("text").to_pylist()
    hasher = MinHasher(num_perm=128)
    hasher.signatures(texts[:100])  # warm-up (permutations, power tables)

    def cpu(function) -> float:
        started = time.process_time()
        function()
        return time.process_time() - started

    ours = min(cpu(lambda: [hasher.signatures(texts[i:i + 4096]) for i in range(0, len(texts), 4096)])
               for _ in range(2))
    prepared = [shingles(text) for text in texts]

    def datasketch_batches():
        for items in prepared:
            MinHash(num_perm=128).update_batch(items)

    def datasketch_with_shingling():
        for text in texts:
            MinHash(num_perm=128).update_batch(shingles(text))

    update_batch = cpu(datasketch_batches)
    with_shingling = cpu(datasketch_with_shingling)
    return {"documents": len(texts), "num_perm": 128,
            "ours_docs_per_cpu_s": round(len(texts) / ours, 1),
            "datasketch_update_batch_docs_per_cpu_s": round(len(texts) / update_batch, 1),
            "datasketch_with_shingling_docs_per_cpu_s": round(len(texts) / with_shingling, 1),
            "speedup_vs_update_batch": round(update_batch / ours, 2)}


# --------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="ours alone on 1,000,000 documents")
    parser.add_argument("--skip-peers", action="store_true", help="ours only")
    parser.add_argument("--peers-python", default=os.environ.get("GAP_REPLAY_BENCH_PYTHON", PEERS_PYTHON))
    parser.add_argument("--setup-peers", action="store_true",
                        help="create the peers' environment first, or install what it lacks")
    parser.add_argument("--profile", action="store_true",
                        help="ours: seconds per step (Spark jobs by description), CPU by process and JVM thread")
    parser.add_argument("--workdir", help="keep the corpus and outputs here")
    parser.add_argument("--datatrove-worker", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.datatrove_worker:
        datatrove_worker(Path(args.datatrove_worker))
        return
    if args.million:
        args.documents, args.skip_peers = 1_000_000, True
    if args.setup_peers:
        setup_peers(args.peers_python)
    os.environ.setdefault("GAP_REPLAY_SPARK_LOG", os.path.join(tempfile.gettempdir(), "gap-replay-bench-dedup-spark.log"))
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gap-dedup-bench-"))
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    try:
        started = time.perf_counter()
        ids, planted = generate(args.documents, workdir, jsonl=not args.skip_peers)
        report = {"bench": "dedup", "documents": len(ids), "threshold": THRESHOLD, "cpus": os.cpu_count(),
                  "corpus_seconds": round(time.perf_counter() - started, 1)}
        methods = {"ours": run_ours(workdir, args.profile)}
        if not args.skip_peers:
            report["signatures_one_core"] = signature_throughput(workdir)
            methods["datasketch"] = run_datasketch(workdir, ids)
            methods["datatrove"] = run_datatrove(workdir, ids, args.peers_python)
        pairs = {name: result.pop("_pairs") for name, result in methods.items() if "_pairs" in result}
        scores, pool = evaluate(pairs, planted, workdir)
        report.update(pool)
        for name, result in methods.items():
            report[name] = {**result, **scores.get(name, {})}
        if "datatrove" in pairs:
            report["end_to_end_speedup_vs_datatrove"] = round(methods["datatrove"]["seconds"] / methods["ours"]["seconds"], 2)
        if "datasketch" in pairs:
            report["end_to_end_speedup_vs_datasketch"] = round(methods["datasketch"]["seconds"] / methods["ours"]["seconds"], 2)
        # Spark uses every core, datasketch one, datatrove its workers: per core, beside the totals.
        for name, result in methods.items():
            cores = result.get("cores") or result.get("workers")
            if cores and "docs_per_s_per_core" not in result:
                result["cores"], result["docs_per_s_per_core"] = cores, round(len(ids) / result["seconds"] / cores, 1)
        for peer in ("datasketch", "datatrove"):
            if peer in methods and methods[peer].get("docs_per_s_per_core"):
                report[f"per_core_speedup_vs_{peer}"] = round(
                    methods["ours"]["docs_per_s_per_core"] / methods[peer]["docs_per_s_per_core"], 2)
            if peer in methods and methods[peer].get("docs_per_cpu_s"):  # what load on the machine barely moves
                report[f"per_cpu_second_speedup_vs_{peer}"] = round(
                    methods["ours"]["docs_per_cpu_s"] / methods[peer]["docs_per_cpu_s"], 2)
        report["peak_rss_mb_bench_process"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
