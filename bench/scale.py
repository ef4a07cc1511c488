"""A whole `gap-replay build` at two sizes (the second `--factor` times the first) over realistic, skewed inputs:
per stage, documents per second per core, the slowest task against the median task of its Spark stages, peak
memory per executor core, how time grows with the data, the projected core-hours of the paper's sizes, and the
floor: one process parsing the same inputs with the bare parsers and tokenizing the texts, without Spark.
Prints one JSON line (and a summary table on stderr).

Inputs (``bench/scale_inputs.py``), generated for each size, format-faithful:

- PubMed baseline-like files (``pubmedYYnNNNN.xml.gz``, ``--medline-files`` of them, even) holding
  ``--citations`` citations, abstracts as long as real ones (mean ~1,500 characters, from the deciles of
  real PubMed abstracts), plus an update file that revises 1% of them and deletes 0.5%;
- PMC OA-style bulk packages (``.tar.gz`` of JATS ``.nxml``, ``--packages`` of them) of ``--articles``
  articles, each the full text of one of the citations; text lengths lognormal, mean 33,000 characters, capped
  at 500,000; sections, citations, tables, figures and a reference list as real JATS has them;
- RedPajama-style replay JSONL (``--replay-files`` files) of ``--replay`` documents of lognormal length, mean
  600 words;
- a guideline site of ``--pages`` article pages behind paginated listings, served on 127.0.0.1 and crawled by
  the build through a source declared in a sources file (no rate limit).

Skew, on purpose: the first PMC package holds ``--big-package`` (10) times the articles of each other one;
``--long-papers`` (3) papers of exactly 500,000 characters, in different packages, in both runs; a cluster of
``--cluster`` (10,000) near-identical replay documents (one text, each copy 3 words changed: Jaccard ~0.9,
over the dedup threshold) spread over the replay files, in the larger run (the smaller has 1/factor of it, so
the two runs hold the same mixture).

Each size is one `gap-replay build` in a new process (``local[*]``: every core of this machine), with Spark's
event log on (``spark.eventLog.enabled``, uncompressed, in the work directory). Measured:

- per stage, the seconds of its ledger, documents in per second per core (``documents / seconds / cores``),
  and the CPU seconds the build's processes (driver Python, JVM, Python workers) used meanwhile, from
  ``/proc/<pid>/stat`` of the process tree, sampled every 0.2 s;
- task balance, from the event log: each Spark stage (task set) is given to the build stage whose run it
  was submitted in (the build's "<stage>: running" and "<stage>: N in" lines, timed as they arrive); per Spark
  stage the executor run time of its slowest successful task over the median one. A build stage reports the
  worst ratio among its Spark stages that have at least 2 tasks and a slowest task of at least 1 s and 5% of
  the stage's seconds (tiny task sets say nothing of balance), with what that slowest task read, sent to
  Python and wrote, and the most cores that Spark stage can use (its tasks' run time over its slowest task's:
  on more, the straggler sets its length); and its busy share: the tasks' time (launch to finish) over cores x
  the stage's seconds;
- memory, from the process tree sampled every 0.2 s: the JVM's resident memory (in local mode it is the
  driver and the executor at once), the Python workers' proportional set size (PSS, so the pages they share
  with the daemon they forked from count once) summed, the largest single worker's resident memory, and per
  executor core: (JVM resident + Python workers' PSS) / cores, at its peak; and the tasks' peak execution
  memory (Spark's own accounting of sorts, joins and aggregations) from the event log;
- the floor (``--floor``, run on the larger run's inputs after its build, in a process of its own with the
  tokenizer's thread pool at one thread): ``pubmed_ingest.medline.iter_medline`` over the MEDLINE files,
  ``pubmed_ingest.jats.parse_jats`` over every member of the PMC packages (read with ``tarfile``),
  ``replay.reader.iter_replay`` over the replay files, ``guidelines_scraper.extract.extract_document`` over the
  site's pages, and every text those give encoded with the tokenizer the build trained (``OUT/tokenizer``,
  ``encode_batch_fast`` in batches of 256, as the mix counts tokens). Its rates are per core (one process).

Projection: core-hours = documents at the paper's sizes / (marginal documents per second per core) / 3600,
stage by stage (the larger run's whole-stage rate where the marginal one cannot be taken); the documents
reaching filter, dedup and mix are scaled by the kept shares the run measured (dedup's without the planted
cluster). The paper's sizes: 37M citations + 5M papers into the pubmed stage, 46k guideline pages, 420M replay
tokens (at the generated replay's words per document). Also given: the projection from the larger run's
whole-stage rates (fixed costs included: an upper bound) and from CPU seconds (marginal documents per CPU
second of the build's processes: the cost with every core busy, and what contention from other work on the
machine does not inflate). The floor's core-hours: the same documents at the floor's rates (parse + tokenize;
the pubmed stage's 42M at the run's mix of citations and papers, like the build's; ``by_kind``: 37M citations
and 5M papers at their own rates). **Headline: the build's projected core-hours over the floor's** (target: at
most 1.5), beside the same ratio from whole-stage rates, from CPU seconds (a lower bound of what an idle
machine would give: the build cannot take fewer core-seconds than its CPU seconds), and for the larger run as
measured (its stages' seconds x cores over the floor's seconds, and CPU seconds over CPU seconds). Each build
and the floor report the load average and the share of their time in which some task of the machine waited for
a CPU (``/proc/pressure/cpu``); each stage the seconds its threads waited for one (``schedstat``): wall-clock
rates from a contended machine overstate the cost, take the wall-clock figures from an idle one.

    python bench/scale.py [--citations 10000 --articles 1350 --replay 3000 --pages 100] [--factor 4] [--quick]

The defaults keep the pubmed stage's mixture at the paper's (5M papers to 37M citations); the larger run's
inputs are 267 MiB (40,000 citations, 5,400 papers of mean 33,000 characters of text, 22,000 replay documents,
400 pages). Two runs took 16 and 18.5 minutes on this project's 2-core machine while other work kept its load
average between 7 and 11; the CPU seconds they used (about 470, builds and floor) put an idle machine well under
10 minutes. ``--quick`` (1,000 and 2,000 citations, factor 2, a cluster of 1,000) is a smoke check of about 4
minutes whose rates are mostly fixed costs.

Acceptance (issue 25): in the larger run, every stage's slowest task under 3x the median of its Spark stage, peak
memory per executor core under 1.5 GiB, and the build's core-hours at most 1.5x the floor's; the JSON's
``acceptance`` says which stages miss, and the summary on stderr ends with a ``MISS`` line per figure missed,
naming the Spark stage and what its slowest task read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from gap_replay.core.ledger import StageLedger
from gap_replay.filters.langid import MODEL_ENV, MODEL_NAME
from gap_replay.guidelines_scraper.local_site import serve_site

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_inputs  # noqa: E402  (the bench's own helper, beside this file)

STAGES = ("pubmed", "guidelines", "filter", "replay", "dedup", "mix")
TARGET_GROWTH = 4.4
TARGET_SLOWEST_OVER_MEDIAN = 3.0
TARGET_PER_CORE_GIB = 1.5
TARGET_OVER_FLOOR = 1.5
PAPER = {"citations": 37_000_000, "papers": 5_000_000, "guidelines": 46_000, "replay_tokens": 420_000_000}
# Where $GAP_REPLAY_LID_MODEL names no model, the one beside the checkout (as in bench/langid.py and the
# tests), else the build's own lookup: the model cache that `gap-replay models download` fills.
SHARED_LID_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / MODEL_NAME
TOKENS_PER_WORD = 1.33  # Llama-2's tokenizer on English prose, about
ENCODE_BATCH = 256
SAMPLE_SECONDS = 0.2
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 2**20


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


# -- the process tree: memory and CPU ------------------------------------------------------------

def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def _memory_kib(pid: int) -> tuple[int, int]:
    """(resident, proportional set size) in KiB; PSS falls back to RSS where smaps_rollup cannot be read."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
                    break
    except (OSError, ValueError):
        try:
            with open(f"/proc/{pid}/status") as status:
                rss = pss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
        except (OSError, ValueError):
            pass
    return rss, pss or rss


def _run_queue_wait(pid: int) -> dict[int, float]:
    """Seconds each thread of a process has waited, runnable, for a CPU (``/proc/<pid>/task/<tid>/schedstat``)."""
    waits = {}
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return waits
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                waits[int(tid)] = int(schedstat.read().split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
    return waits


def cpu_pressure() -> float | None:
    """Microseconds in which some task of this machine waited for a CPU (``/proc/pressure/cpu``), or None."""
    try:
        with open("/proc/pressure/cpu") as pressure:
            return float(pressure.readline().rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        return None


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Sampler(threading.Thread):
    """Every SAMPLE_SECONDS: the build's process tree, its memory by role (driver Python, JVM, Python workers)
    and its CPU seconds, peaks kept per build stage (`stage`, set from the build's output)."""

    def __init__(self, root: int, cores: int):
        super().__init__(daemon=True)
        self.root, self.cores, self.stage, self.stop = root, cores, "start", threading.Event()
        self.peaks: dict[str, dict[str, float]] = {}
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds last seen (processes that ended keep theirs)
        self.wait: dict[int, float] = {}  # tid -> seconds waited for a CPU, last seen
        self.roles: dict[int, str] = {}  # pid -> its role, last seen
        # (epoch s, CPU s of the tree so far, CPU wait s so far, CPU s so far by role)
        self.series: list[tuple[float, float, float, dict[str, float]]] = []

    def _role(self, pid: int, parent: int) -> str:
        """Read anew each time: spark-submit is a shell script that execs the JVM under the same pid."""
        if pid == self.root:
            return "driver_python"
        command = _command(pid)
        if "pyspark.daemon" in command or "pyspark.worker" in command:
            return "python_worker" if "pyspark.daemon" in _command(parent) else "python_daemon"
        if command.split(" ", 1)[0].endswith("java"):
            return "jvm"
        return "other"

    def sample(self) -> None:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                found = _stat(int(entry))
                if found:
                    parents[int(entry)] = found
        tree, frontier = {self.root}, [self.root]
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in parents.items():
            children.setdefault(parent, []).append(pid)
        while frontier:
            for child in children.get(frontier.pop(), []):
                if child not in tree:
                    tree.add(child)
                    frontier.append(child)
        figures = dict.fromkeys(("jvm_mib", "python_workers_pss_mib", "python_worker_max_rss_mib",
                                 "driver_python_mib"), 0.0)
        for pid in tree:
            if pid not in parents:
                continue
            parent, cpu = parents[pid]
            self.cpu[pid] = max(self.cpu.get(pid, 0.0), cpu)
            self.wait.update(_run_queue_wait(pid))
            role = self._role(pid, parent)
            self.roles[pid] = role
            rss, pss = (value / 1024 for value in _memory_kib(pid))
            if role == "jvm":
                figures["jvm_mib"] += rss
            elif role in ("python_worker", "python_daemon"):
                figures["python_workers_pss_mib"] += pss
                if role == "python_worker":
                    figures["python_worker_max_rss_mib"] = max(figures["python_worker_max_rss_mib"], rss)
            else:
                figures["driver_python_mib"] += rss
        figures["per_executor_core_mib"] = (figures["jvm_mib"] + figures["python_workers_pss_mib"]) / self.cores
        by_role: dict[str, float] = {}
        for pid, used in self.cpu.items():
            role = self.roles.get(pid, "other")
            role = "python_workers" if role in ("python_worker", "python_daemon") else role
            by_role[role] = by_role.get(role, 0.0) + used
        self.series.append((time.time(), sum(self.cpu.values()), sum(self.wait.values()), by_role))
        peak = self.peaks.setdefault(self.stage, dict.fromkeys(figures, 0.0))
        for key, value in figures.items():
            peak[key] = max(peak[key], value)

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_SECONDS):
            self.sample()

    def between(self, start: float, end: float) -> tuple[float, float, dict[str, float]]:
        """(CPU seconds used, seconds waited for a CPU, CPU seconds by role: jvm, python_workers,
        driver_python, other) by the tree between two epoch times (the samples nearest inside)."""
        inside = [sample for sample in self.series if start <= sample[0] <= end + SAMPLE_SECONDS]
        if len(inside) < 2:
            return 0.0, 0.0, {}
        first, last = inside[0], inside[-1]
        roles = {role: round(used - first[3].get(role, 0.0), 1) for role, used in last[3].items()}
        return last[1] - first[1], last[2] - first[2], roles


# -- Spark's event log ---------------------------------------------------------------------------

def read_events(directory: Path) -> list[dict]:
    """Every event of the application's log(s) under `directory` (plain JSON lines; rolling logs in order)."""
    files = sorted((path for path in directory.rglob("*")
                    if path.is_file() and not path.name.startswith((".", "appstatus"))),
                   key=lambda path: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)])
    events = []
    for path in files:
        with path.open(encoding="utf-8") as log:
            for line in log:
                if line.strip():
                    events.append(json.loads(line))
    return events


def _accumulable(info: dict, name: str) -> int:
    values = [int(item.get("Update") or 0) for item in info.get("Accumulables", []) if item.get("Name") == name]
    return max(values) if values else 0


def spark_tasks(events: list[dict]) -> tuple[dict[int, dict], dict[int, list[dict]]]:
    """(Spark stage id -> name, submission and completion (epoch s), tasks; stage id -> its task records)."""
    stages: dict[int, dict] = {}
    tasks: dict[int, list[dict]] = {}
    for event in events:
        kind = event.get("Event")
        if kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info = event["Stage Info"]
            stage = stages.setdefault(info["Stage ID"], {"name": info.get("Stage Name", ""),
                                                          "tasks": info.get("Number of Tasks")})
            if info.get("Submission Time"):
                stage["submitted"] = info["Submission Time"] / 1000
            if info.get("Completion Time"):
                stage["completed"] = info["Completion Time"] / 1000
        elif kind == "SparkListenerTaskEnd":
            info, metrics = event["Task Info"], event.get("Task Metrics") or {}
            shuffle = metrics.get("Shuffle Read Metrics") or {}
            tasks.setdefault(event["Stage ID"], []).append({
                "index": info["Index"], "attempt": info["Attempt"], "speculative": info.get("Speculative", False),
                "launched": info.get("Launch Time", 0) / 1000, "finished": info.get("Finish Time", 0) / 1000,
                "ok": (event.get("Task End Reason") or {}).get("Reason") == "Success",
                "run_s": metrics.get("Executor Run Time", 0) / 1000,
                "cpu_s": metrics.get("Executor CPU Time", 0) / 1e9,
                "gc_s": metrics.get("JVM GC Time", 0) / 1000,
                "peak_execution_mib": metrics.get("Peak Execution Memory", 0) / MIB,
                "input_records": (metrics.get("Input Metrics") or {}).get("Records Read", 0),
                "input_mib": (metrics.get("Input Metrics") or {}).get("Bytes Read", 0) / MIB,
                "shuffle_read_records": shuffle.get("Total Records Read", 0),
                "shuffle_read_mib": (shuffle.get("Remote Bytes Read", 0) + shuffle.get("Local Bytes Read", 0)) / MIB,
                "to_python_mib": _accumulable(info, "data sent to Python workers") / MIB,
                "from_python_mib": _accumulable(info, "data returned from Python workers") / MIB,
                "output_rows": _accumulable(info, "number of output rows"),
                "written_mib": (metrics.get("Output Metrics") or {}).get("Bytes Written", 0) / MIB,
            })
    return stages, tasks


def task_balance(stages: dict[int, dict], tasks: dict[int, list[dict]], windows: dict[str, tuple[float, float]],
                 cores: int) -> dict[str, dict]:
    """Per build stage: its Spark stages' slowest task over median task (module docstring) and busy share."""
    by_stage: dict[str, list[int]] = {name: [] for name in windows}
    for spark_id, info in stages.items():
        submitted = info.get("submitted")
        for name, (start, end) in windows.items():
            if submitted is not None and start - 0.5 <= submitted <= end + 0.5:
                by_stage[name].append(spark_id)
                break
    balance = {}
    for name, ids in by_stage.items():
        start, end = windows[name]
        seconds = max(1e-9, end - start)
        summaries, busy, peak_execution = [], 0.0, 0.0
        for spark_id in sorted(ids):
            done = [task for task in tasks.get(spark_id, []) if task["ok"]]
            busy += sum(max(0.0, min(end, task["finished"]) - max(start, task["launched"]))
                        for task in tasks.get(spark_id, []))
            peak_execution = max([peak_execution] + [task["peak_execution_mib"] for task in done])
            if not done:
                continue
            runs = [task["run_s"] for task in done]
            slowest = max(done, key=lambda task: task["run_s"])
            median = statistics.median(runs)
            summaries.append({
                "spark_stage": spark_id, "name": stages[spark_id]["name"][:80], "tasks": len(done),
                "median_s": round(median, 2), "slowest_s": round(slowest["run_s"], 2),
                "slowest_over_median": round(slowest["run_s"] / median, 2) if median > 0 else None,
                # However many cores, the stage lasts at least its slowest task: more cores than this help it
                # no further.
                "max_useful_cores": round(sum(runs) / slowest["run_s"], 1) if slowest["run_s"] > 0 else None,
                "slowest_task": {key: (round(value, 2) if isinstance(value, float) else value)
                                 for key, value in slowest.items() if key not in ("ok", "launched", "finished")},
            })
        # Spark stages of one task that ran for a second or more: work on one core while the others idled.
        single = sum(s["slowest_s"] for s in summaries if s["tasks"] == 1 and s["slowest_s"] >= 1.0)
        significant = [s for s in summaries if s["tasks"] >= 2 and s["slowest_over_median"] is not None
                       and s["slowest_s"] >= max(1.0, 0.05 * seconds)]
        worst = max(significant, key=lambda s: s["slowest_over_median"]) if significant else None
        heaviest = sorted(summaries, key=lambda s: -s["slowest_s"])[:3]
        balance[name] = {
            "spark_stages": len(ids), "tasks": sum(s["tasks"] for s in summaries),
            "slowest_over_median": worst["slowest_over_median"] if worst else None,
            "worst_spark_stage": worst,
            "longest_spark_stages": [{key: s[key] for key in ("spark_stage", "name", "tasks", "median_s", "slowest_s",
                                                              "slowest_over_median", "max_useful_cores")}
                                     for s in heaviest],
            # Task time (launch to finish, within the stage) over the core time the stage held: what idled,
            # idled on fixed costs (job planning, the driver's own work) or on a straggler.
            "busy_core_share": round(busy / (cores * seconds), 2),
            "single_task_seconds": round(single, 1),
            "peak_execution_mib": round(peak_execution),
        }
    return balance


# -- one build -----------------------------------------------------------------------------------

def run_build(workdir: Path, config: Path) -> dict:
    output, events = workdir / "build", workdir / "events"
    events.mkdir()
    env = {**os.environ, "GAP_REPLAY_SPARK_LOG": str(workdir / "spark.log")}
    if not env.get(MODEL_ENV) and SHARED_LID_MODEL.is_file():
        env[MODEL_ENV] = str(SHARED_LID_MODEL)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]  # other work on the machine slows every stage: report it beside the rates
    pressure_before = cpu_pressure()
    started, started_epoch = time.perf_counter(), time.time()
    event_conf = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
                  "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}
    command = [sys.executable, "-m", "gap_replay.cli", "build", "--config", str(config), "--output", str(output)]
    for key, value in event_conf.items():
        command += ["--spark-conf", f"{key}={value}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    sampler = Sampler(process.pid, cores)
    sampler.start()
    log, begun, ended = [], {}, {}
    for line in process.stderr:
        log.append(line)
        running = re.match(r"\[gap-replay\] (\w+): running", line)
        if running:
            sampler.stage = running.group(1)
            begun[running.group(1)] = time.time()
        finished = re.match(r"\[gap-replay\] (\w+): [\d,]+ in,", line)
        if finished:
            ended[finished.group(1)] = time.time()
    process.wait()
    seconds = time.perf_counter() - started
    pressure_after = cpu_pressure()
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"the build failed:\n{''.join(log[-40:])}")
    ledgers = {stage: StageLedger.read(str(output if stage == "mix" else output / "stages" / stage))
               for stage in STAGES}
    windows = {stage: (begun[stage], ended.get(stage, begun[stage] + (ledgers[stage].seconds or 0.0)))
               for stage in STAGES if stage in begun}
    spark_stages, tasks = spark_tasks(read_events(events))
    balance = task_balance(spark_stages, tasks, windows, cores)
    stages = {}
    for stage in STAGES:
        ledger = ledgers[stage]
        stage_seconds = ledger.seconds or 0.0
        cpu, wait, cpu_by_role = sampler.between(*windows[stage]) if stage in windows else (0.0, 0.0, {})
        stages[stage] = {
            "window_s": [round(value - started_epoch, 1) for value in windows[stage]] if stage in windows else None,
            "documents_in": ledger.documents_in, "kept": ledger.kept, "seconds": round(stage_seconds, 2),
            "documents_per_s_per_core": (round(ledger.documents_in / stage_seconds / cores, 2)
                                         if stage_seconds else None),
            "cpu_seconds": round(cpu, 1),
            "cpu_seconds_by_role": cpu_by_role,
            "cpu_wait_seconds": round(wait, 1),
            "documents_per_cpu_s": round(ledger.documents_in / cpu, 2) if cpu else None,
            "tasks": balance.get(stage),
            "peak_mib": {key: round(value) for key, value in sampler.peaks.get(stage, {}).items()},
        }
    peak = {key: round(max(p[key] for p in sampler.peaks.values())) for key in next(iter(sampler.peaks.values()))}
    return {"wall_seconds": round(seconds, 1), "stages": stages, "cpu_seconds": round(sum(sampler.cpu.values()), 1),
            "cpu_wait_seconds": round(sum(sampler.wait.values()), 1),
            "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
            # The share of the build's wall time in which some task of this machine (the build's or another's)
            # waited for a CPU: near 0 on an idle machine, near 1 when it is oversubscribed throughout.
            "cpu_pressure_share": (round((pressure_after - pressure_before) / 1e6 / seconds, 2)
                                   if pressure_before is not None and pressure_after is not None else None),
            "peak_mib": peak, "spark_event_log_tasks": sum(len(found) for found in tasks.values())}


def one_size(workdir: Path, args, scale: int, seed: int) -> dict:
    text = scale_inputs.Text(seed)
    inputs = workdir / "inputs"
    skew = scale_inputs.Skew(big_package_factor=args.big_package, long_papers=args.long_papers,
                             cluster=args.cluster * scale // args.factor)
    started = time.perf_counter()
    pmids = scale_inputs.write_medline(inputs / "pubmed", text, args.citations * scale, args.medline_files,
                                       first_pmid=30_000_001)
    pmc = scale_inputs.write_pmc(inputs / "pmc", text, args.articles * scale, pmids, args.packages, skew)
    replay = scale_inputs.write_replay(inputs / "replay", text, args.replay * scale, args.replay_files, skew.cluster)
    scale_inputs.write_site(workdir / "site", text, args.pages * scale)
    generated = time.perf_counter() - started
    with serve_site(workdir / "site") as site:
        config = write_config(workdir, site.base)
        result = run_build(workdir, config)
    input_bytes = sum(path.stat().st_size for path in inputs.rglob("*") if path.is_file())
    return {"citations": args.citations * scale, "articles": args.articles * scale,
            "replay_documents": replay["documents"], "guideline_pages": args.pages * scale,
            "input_mib": round(input_bytes / MIB, 1),
            "generate_seconds": round(generated, 1), "pmc": pmc, "replay": replay,
            "replay_words_per_document": replay["words_per_document"], **result}


# -- the floor -----------------------------------------------------------------------------------

def floor(workdir: Path) -> dict:
    """One process, no Spark: the bare parsers over the run's inputs and the build's tokenizer over their texts
    (module docstring). Per kind: records read, documents, characters, tokens, seconds (wall and CPU) of
    parsing and of tokenizing."""
    from tokenizers import Tokenizer

    from gap_replay.guidelines_scraper.extract import extract_document
    from gap_replay.guidelines_scraper.sources import load_sources
    from gap_replay.pubmed_ingest.jats import parse_jats
    from gap_replay.pubmed_ingest.medline import iter_medline
    from gap_replay.replay.reader import iter_replay

    tokenizer = Tokenizer.from_file(str(workdir / "build" / "tokenizer" / "tokenizer.json"))
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    inputs = workdir / "inputs"
    results = {}

    def measure(kind: str, outcomes) -> None:
        figures = dict.fromkeys(("records", "documents", "characters", "max_characters", "tokens"), 0)
        tokenize_wall = tokenize_cpu = 0.0
        batch: list[str] = []

        def flush() -> None:
            nonlocal tokenize_wall, tokenize_cpu
            wall, cpu = time.perf_counter(), time.process_time()
            figures["tokens"] += sum(len(encoding) for encoding in encode(batch, add_special_tokens=False))
            tokenize_wall += time.perf_counter() - wall
            tokenize_cpu += time.process_time() - cpu
            batch.clear()

        wall, cpu = time.perf_counter(), time.process_time()
        for outcome in outcomes:
            figures["records"] += 1
            if isinstance(outcome, dict):
                figures["documents"] += 1
                figures["characters"] += len(outcome["text"])
                figures["max_characters"] = max(figures["max_characters"], len(outcome["text"]))
                batch.append(outcome["text"])
                if len(batch) >= ENCODE_BATCH:
                    flush()
        if batch:
            flush()
        total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
        results[kind] = {**figures, "mean_characters": round(figures["characters"] / max(1, figures["documents"])),
                         "parse_seconds": round(total_wall - tokenize_wall, 2),
                         "tokenize_seconds": round(tokenize_wall, 2),
                         "seconds": round(total_wall, 2), "cpu_seconds": round(total_cpu, 2),
                         "records_per_s": round(figures["records"] / total_wall, 1) if total_wall else None,
                         "records_per_cpu_s": round(figures["records"] / total_cpu, 1) if total_cpu else None}

    def medline():
        for path in sorted((inputs / "pubmed").iterdir()):
            yield from iter_medline(str(path), name=path.name)

    def papers():
        for path in sorted((inputs / "pmc").iterdir()):
            with tarfile.open(path, "r|gz") as archive:
                for member in archive:
                    if member.isfile():
                        yield parse_jats(archive.extractfile(member).read(), name=f"{path.name}:{member.name}")

    def replay():
        for path in sorted((inputs / "replay").iterdir()):
            with path.open("rb") as stream:
                yield from iter_replay(stream, name=path.name)

    def pages():
        source = load_sources(workdir / "sources.toml")["bench"]
        headers = json.dumps({"Content-Type": "text/html; charset=utf-8"})
        for path in sorted((workdir / "site" / "a").iterdir()):
            url = f"{source.base_url}/a/{path.name}"
            yield extract_document({"source": "bench", "kind": "article", "url": url, "final_url": url, "status": 200,
                                    "headers": headers, "fetched_at": "2026-01-01T00:00:00Z", "body": path.read_bytes(),
                                    "body_sha256": None, "error": None}, source)

    waited = sum(_run_queue_wait(os.getpid()).values())
    for kind, outcomes in (("citations", medline()), ("papers", papers()), ("replay", replay()),
                           ("guidelines", pages())):
        measure(kind, outcomes)
    return {"kinds": results, "seconds": round(sum(kind["seconds"] for kind in results.values()), 1),
            "cpu_seconds": round(sum(kind["cpu_seconds"] for kind in results.values()), 1),
            "cpu_wait_seconds": round(sum(_run_queue_wait(os.getpid()).values()) - waited, 1),
            "tokenizer_vocabulary": tokenizer.get_vocab_size()}


def run_floor(workdir: Path) -> dict:
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    load_before, pressure_before, started = os.getloadavg()[0], cpu_pressure(), time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--floor", str(workdir)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the floor failed:\n{done.stderr[-4000:]}")
    seconds, pressure_after = time.perf_counter() - started, cpu_pressure()
    return {**json.loads(done.stdout.strip().splitlines()[-1]),
            "load_average_1min": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)},
            "cpu_pressure_share": (round((pressure_after - pressure_before) / 1e6 / seconds, 2)
                                   if pressure_before is not None and pressure_after is not None else None)}


# -- projection ----------------------------------------------------------------------------------

def marginal_rates(small: dict, large: dict, cores: int, key: str = "seconds") -> dict[str, float | None]:
    """Per stage: (extra documents) / (extra seconds) / cores from the smaller run to the larger; with
    key="cpu_seconds" and cores=1, extra documents per extra CPU second."""
    rates = {}
    for stage in STAGES:
        extra = large["stages"][stage]["documents_in"] - small["stages"][stage]["documents_in"]
        seconds = large["stages"][stage][key] - small["stages"][stage][key]
        rates[stage] = round(extra / seconds / cores, 2) if extra > 0 and seconds > 0 else None
    return rates


def paper_replay_documents(run: dict) -> float:
    return PAPER["replay_tokens"] / (run["replay_words_per_document"] * TOKENS_PER_WORD)


def paper_documents(run: dict) -> dict[str, float]:
    """Documents into each stage at the paper's sizes; filter, dedup and mix by the kept shares `run` measured
    (dedup's without the planted cluster of near-duplicates, of which it keeps one)."""
    stages = run["stages"]

    def kept_share(stage: str) -> float:
        documents, kept = stages[stage]["documents_in"], stages[stage]["kept"]
        if stage == "dedup" and cluster > 1:  # the planted cluster is not the corpus' share of near-duplicates
            documents, kept = documents - cluster, kept - 1
        return kept / documents if documents > 0 else 1.0

    cluster = run["replay"]["near_duplicate_cluster"]
    replay_documents = paper_replay_documents(run)
    pubmed_in = PAPER["citations"] + PAPER["papers"]
    filter_in = pubmed_in * kept_share("pubmed") + PAPER["guidelines"] * kept_share("guidelines")
    dedup_in = filter_in * kept_share("filter") + replay_documents * kept_share("replay")
    return {"pubmed": pubmed_in, "guidelines": PAPER["guidelines"], "filter": filter_in,
            "replay": replay_documents, "dedup": dedup_in, "mix": dedup_in * kept_share("dedup")}


def project(documents: dict[str, float], rates: dict[str, float | None]) -> dict:
    hours = {name: round(documents[name] / rate / 3600, 2) for name, rate in rates.items() if rate}
    return {"rates": rates, "core_hours": hours, "total_core_hours": round(sum(hours.values()), 2)}


def projection(small: dict, large: dict, cores: int) -> dict:
    """Core-hours of each stage at the paper's sizes: from the marginal per-core rates (the larger run's
    whole-stage rate where the marginal one cannot be taken: the headline), from the larger run's whole-stage
    rates (fixed costs included: an upper bound), and in CPU seconds (marginal documents per CPU second:
    what the work costs with every core busy)."""
    documents = paper_documents(large)
    whole = {stage: large["stages"][stage]["documents_per_s_per_core"] for stage in STAGES}
    marginal = marginal_rates(small, large, cores)
    cpu_marginal = marginal_rates(small, large, 1, "cpu_seconds")
    cpu_whole = {stage: large["stages"][stage]["documents_per_cpu_s"] for stage in STAGES}
    headline = project(documents, {stage: marginal[stage] or whole[stage] for stage in STAGES})
    return {"documents": {stage: round(count) for stage, count in documents.items()},
            "documents_per_s_per_core": headline["rates"], "core_hours": headline["core_hours"],
            "total_core_hours": round(headline["total_core_hours"], 1),
            "whole_stage_rates": project(documents, whole),
            "cpu": project(documents, {stage: cpu_marginal[stage] or cpu_whole[stage] for stage in STAGES})}


FLOOR_KINDS = ("citations", "papers", "guidelines", "replay")


def floor_projection(run: dict, measured: dict) -> dict:
    """Core-hours of the floor at the paper's sizes, per second of wall time (one process: one core) and per CPU
    second. As the build's projection does, the pubmed stage's 42M documents cost what the run's mixture of
    citations and papers costs per document (so the two compare like for like); ``by_kind`` instead takes 37M
    citations and 5M papers at their own rates."""
    kinds = measured["kinds"]
    pubmed = ("citations", "papers")
    groups = {"pubmed": pubmed, "guidelines": ("guidelines",), "replay": ("replay",)}
    documents = {"pubmed": PAPER["citations"] + PAPER["papers"], "guidelines": PAPER["guidelines"],
                 "replay": paper_replay_documents(run)}

    def rates(key: str) -> dict[str, float | None]:
        found = {}
        for group, members in groups.items():
            seconds = sum(kinds[kind][key] for kind in members)
            found[group] = round(sum(kinds[kind]["records"] for kind in members) / seconds, 2) if seconds else None
        return found

    by_kind = {"citations": PAPER["citations"], "papers": PAPER["papers"], "guidelines": PAPER["guidelines"],
               "replay": documents["replay"]}
    wall = project(documents, rates("seconds"))
    return {"documents": {group: round(count) for group, count in documents.items()},
            "records_per_s_per_core": wall["rates"], "core_hours": wall["core_hours"],
            "total_core_hours": wall["total_core_hours"], "cpu": project(documents, rates("cpu_seconds")),
            "by_kind": project(by_kind, {kind: kinds[kind]["records_per_s"] for kind in FLOOR_KINDS})}


def acceptance(run: dict) -> dict:
    ratios = {stage: figures["tasks"]["slowest_over_median"] for stage, figures in run["stages"].items()
              if figures["tasks"] and figures["tasks"]["slowest_over_median"] is not None}
    per_core = {stage: round(figures["peak_mib"].get("per_executor_core_mib", 0) / 1024, 2)
                for stage, figures in run["stages"].items()}
    return {"slowest_over_median": ratios, "slowest_over_median_target": TARGET_SLOWEST_OVER_MEDIAN,
            "stages_over_slowest_target": sorted(stage for stage, ratio in ratios.items()
                                                 if ratio >= TARGET_SLOWEST_OVER_MEDIAN),
            "per_executor_core_gib": per_core, "per_executor_core_target_gib": TARGET_PER_CORE_GIB,
            "stages_over_memory_target": sorted(stage for stage, gib in per_core.items() if gib >= TARGET_PER_CORE_GIB)}


def summary(result: dict) -> str:
    """The larger run, stage by stage, and the headline, for the terminal."""
    large, cores = result["runs"]["large"], result["cores"]
    lines = [f"{'stage':<11}{'docs in':>9}{'s':>7}{'docs/s/core':>12}{'cpu s':>7}{'tasks':>6}{'slow/med':>9}{'busy':>6}"
             f"{'JVM MiB':>8}{'py/core':>8}{'max py':>7}{'MiB/core':>9}{'core-h':>8}"]
    for stage in STAGES:
        figures, tasks = large["stages"][stage], large["stages"][stage]["tasks"] or {}
        peak = figures["peak_mib"]
        lines.append(f"{stage:<11}{figures['documents_in']:>9,}{figures['seconds']:>7.1f}"
                     f"{figures['documents_per_s_per_core'] or 0:>12.1f}{figures['cpu_seconds']:>7.1f}"
                     f"{tasks.get('tasks', 0):>6}"
                     f"{tasks.get('slowest_over_median') or 0:>9.2f}{tasks.get('busy_core_share') or 0:>6.2f}"
                     f"{peak.get('jvm_mib', 0):>8}{round(peak.get('python_workers_pss_mib', 0) / cores):>8}"
                     f"{peak.get('python_worker_max_rss_mib', 0):>7}{peak.get('per_executor_core_mib', 0):>9}"
                     f"{result['paper_projection']['core_hours'].get(stage, 0):>8.2f}")
    floor_kinds = result["floor"]["kinds"]
    lines.append("floor, one core: " + ", ".join(
        f"{kind} {floor_kinds[kind]['records_per_s']}/s (parse {floor_kinds[kind]['parse_seconds']} s, "
        f"tokenize {floor_kinds[kind]['tokenize_seconds']} s)" for kind in FLOOR_KINDS))
    by_role = {stage: sorted(large["stages"][stage]["cpu_seconds_by_role"].items()) for stage in STAGES}
    lines.append("CPU seconds by process (larger run): " + "; ".join(
        f"{stage} " + ", ".join(f"{role} {used}" for role, used in by_role[stage] if used) for stage in STAGES)
        + f"; the floor {result['floor']['cpu_seconds']}")
    papers = floor_kinds["papers"]
    lines.append(f"inputs (larger run, as parsed): papers mean {papers['mean_characters']:,} characters of text, "
                 f"longest {papers['max_characters']:,}; replay {large['replay_words_per_document']} words a document, "
                 f"near-duplicate cluster {large['replay']['near_duplicate_cluster']:,}; PMC packages (articles) "
                 + ", ".join(str(package["articles"]) for package in large["pmc"]["packages"]))
    headline = result["headline"]
    lines.append(f"paper sizes: build {headline['build_core_hours']} core-hours, floor {headline['floor_core_hours']} "
                 f"core-hours: {headline['build_over_floor']}x (target {TARGET_OVER_FLOOR}x; whole-stage rates "
                 f"{headline['whole_stage_rates_build_over_floor']}x, CPU seconds "
                 f"{headline['cpu_build_over_floor']}x); "
                 f"{cores} cores, load {large['load_average_1min']}, CPU pressure {large['cpu_pressure_share']}")
    verdict = result["acceptance"]
    for stage in verdict["stages_over_slowest_target"]:
        worst = large["stages"][stage]["tasks"]["worst_spark_stage"]
        task = worst["slowest_task"]
        lines.append(f"MISS {stage}: slowest task {worst['slowest_over_median']}x the median (target < "
                     f"{TARGET_SLOWEST_OVER_MEDIAN}) in Spark stage {worst['spark_stage']} ({worst['name']}, "
                     f"{worst['tasks']} tasks: median {worst['median_s']} s, slowest {worst['slowest_s']} s, task "
                     f"{task['index']}: {task['input_records']:,} records / {task['input_mib']} MiB in, "
                     f"{task['shuffle_read_records']:,} shuffled in, {task['output_rows']:,} rows out, "
                     f"{task['from_python_mib']} MiB from Python)")
    for stage in verdict["stages_over_memory_target"]:
        lines.append(f"MISS {stage}: {verdict['per_executor_core_gib'][stage]} GiB per executor core at its peak "
                     f"(target < {TARGET_PER_CORE_GIB})")
    if headline["build_over_floor"] is not None and headline["build_over_floor"] > TARGET_OVER_FLOOR:
        lines.append(f"MISS build over floor: {headline['build_over_floor']}x (target <= {TARGET_OVER_FLOOR}; "
                     f"{headline['cpu_build_over_floor']}x in CPU seconds, what contention does not inflate)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citations", type=int, default=10_000)
    parser.add_argument("--articles", type=int, default=1_350)
    parser.add_argument("--replay", type=int, default=3_000)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--medline-files", type=int, default=4)
    parser.add_argument("--packages", type=int, default=5,
                        help="PMC packages (the first one holds --big-package times the articles of each other one)")
    parser.add_argument("--big-package", type=int, default=10)
    parser.add_argument("--long-papers", type=int, default=3, help="papers of 500,000 characters, in each run")
    parser.add_argument("--cluster", type=int, default=10_000,
                        help="near-identical replay documents in the larger run (1/factor of it in the smaller)")
    parser.add_argument("--replay-files", type=int, default=8)
    parser.add_argument("--factor", type=int, default=4, help="the larger size is this many times the smaller")
    parser.add_argument("--keep", help="work in this directory and keep it")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check (a few minutes): 1,000 and 2,000 citations, 135 and 270 articles, 300 and "
                             "600 replay documents, 20 and 40 pages, a cluster of 1,000; the same skew otherwise")
    parser.add_argument("--floor", help=argparse.SUPPRESS)  # internal: the floor over a finished run's directory
    args = parser.parse_args()
    if args.floor:
        print(json.dumps(floor(Path(args.floor))))
        return
    if args.quick:
        args.citations, args.articles, args.replay, args.pages = 1_000, 135, 300, 20
        args.cluster, args.factor = 1_000, 2
    root = Path(args.keep or tempfile.mkdtemp(prefix="gap-scale-"))
    cores = os.cpu_count() or 1
    started = time.perf_counter()
    runs = {}
    for label, scale in (("small", 1), ("large", args.factor)):
        runs[label] = one_size(root / label, args, scale, seed=scale)
        print(f"scale: {label} build {runs[label]['wall_seconds']} s", file=sys.stderr)
    measured_floor = run_floor(root / "large")
    small, large = runs["small"], runs["large"]
    growth = {stage: round(large["stages"][stage]["seconds"] / small["stages"][stage]["seconds"], 2)
              for stage in STAGES if small["stages"][stage]["seconds"]}
    growth["build"] = round(large["wall_seconds"] / small["wall_seconds"], 2)
    build = projection(small, large, cores)
    floor_hours = floor_projection(large, measured_floor)
    stage_seconds = sum(large["stages"][stage]["seconds"] for stage in STAGES)
    stage_cpu = sum(large["stages"][stage]["cpu_seconds"] for stage in STAGES)

    def ratio(build_hours: float, floor_hours: float) -> float | None:
        return round(build_hours / floor_hours, 2) if floor_hours else None

    headline = {
        "build_core_hours": build["total_core_hours"], "floor_core_hours": floor_hours["total_core_hours"],
        "build_over_floor": ratio(build["total_core_hours"], floor_hours["total_core_hours"]),
        "target": TARGET_OVER_FLOOR,
        "whole_stage_rates_build_over_floor": ratio(build["whole_stage_rates"]["total_core_hours"],
                                                    floor_hours["total_core_hours"]),
        "cpu_build_over_floor": ratio(build["cpu"]["total_core_hours"], floor_hours["cpu"]["total_core_hours"]),
        "large_run_measured": {
            "build_core_seconds": round(stage_seconds * cores, 1), "floor_seconds": measured_floor["seconds"],
            "build_over_floor": ratio(stage_seconds * cores, measured_floor["seconds"]),
            "build_cpu_seconds": round(stage_cpu, 1), "floor_cpu_seconds": measured_floor["cpu_seconds"],
            "build_cpu_over_floor_cpu": ratio(stage_cpu, measured_floor["cpu_seconds"]),
        },
    }
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "bench": "scale", "cores": cores, "factor": args.factor, "runs": runs,
        "growth": growth, "target_growth": TARGET_GROWTH,
        "within_target": all(value <= TARGET_GROWTH for value in growth.values()),
        "marginal_documents_per_s_per_core": marginal_rates(small, large, cores), "paper_projection": build,
        "floor": {**measured_floor, "paper_projection": floor_hours}, "headline": headline,
        "acceptance": {**acceptance(large), "build_over_floor": headline["build_over_floor"],
                       "cpu_build_over_floor": headline["cpu_build_over_floor"],
                       "build_over_floor_target": TARGET_OVER_FLOOR},
        "quick": args.quick, "seconds": round(time.perf_counter() - started, 1),
    }
    print(summary(result), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
