"""A crawl killed with SIGKILL and restarted completes with no article fetched twice.

The crawl runs in a subprocess (the function a Spark task runs, :func:`run_crawl_task`) against a
local site that counts, per URL, the requests it receives and the responses it completes. The
server holds the response to one article until the test has killed the crawler, then drops the
connection: at that moment every earlier article has been answered, and the crawler is blocked in
its next request, so the store must already hold those answers (each fetch is durable before the
next request). The restarted crawl must fetch only what is missing. robots.txt and the listing
pages are fetched again by design (they are how new articles are found).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from gap_replay.guidelines_scraper.local_site import serve_site
from gap_replay.guidelines_scraper.raw_store import RawStore

ARTICLES = 24
KILL_AT = 11          # the crawler is killed while waiting for the 11th article
CANONICAL = "https://killed.example.org"

WORKER = """
import json, sys
from gap_replay.guidelines_scraper.job import CrawlTask, run_crawl_task
from gap_replay.guidelines_scraper.sources import parse_sources
args = json.loads(sys.argv[1])
source = parse_sources({"killed": dict(name="Killed crawl", base_url=args["canonical"], seeds=["/list/1"],
                                       discovery="listing", listing_pattern=r"/list/\\d+$",
                                       link_pattern=r"/guidance/", min_words=10)})["killed"]
task = CrawlTask((source,), args["raw"], (("min_delay", 0.0), ("read_timeout", 60.0)),
                 ((args["canonical"], args["base"]),))
print(json.dumps(run_crawl_task(task)), flush=True)
"""


def make_site(root: Path) -> None:
    per_page = 8
    for page in range(1, ARTICLES // per_page + 1):
        links = "".join(f'<li><a href="/guidance/g{n:03d}">Guideline {n}</a></li>'
                        for n in range((page - 1) * per_page + 1, page * per_page + 1))
        nxt = f'<a href="/list/{page + 1}">Next</a>' if page * per_page < ARTICLES else ""
        (root / "list").mkdir(exist_ok=True)
        (root / "list" / str(page)).write_text(f"<html><body><ul>{links}</ul>{nxt}</body></html>")
    (root / "guidance").mkdir()
    for n in range(1, ARTICLES + 1):
        (root / "guidance" / f"g{n:03d}").write_text(
            f"<html><head><title>Guideline {n}</title></head><body><article><h1>Guideline {n}</h1>"
            f"<p>Recommendation {n}: offer the treatment to adults who meet the criteria, and review it yearly.</p>"
            "</article></body></html>")
    (root / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")


def worker(raw: Path, base: str) -> subprocess.Popen:
    args = json.dumps({"canonical": CANONICAL, "base": base, "raw": str(raw)})
    return subprocess.Popen([sys.executable, "-c", WORKER, args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])


def test_sigkill_then_restart_fetches_no_article_twice(tmp_path):
    root, raw = tmp_path / "site", tmp_path / "raw"
    root.mkdir()
    make_site(root)
    held, release = threading.Event(), threading.Event()
    state = {"articles": 0, "armed": True, "held": None}

    def hook(target: str):
        if "/guidance/" not in target or not state["armed"]:
            return None
        state["articles"] += 1
        if state["articles"] == KILL_AT:
            state["held"] = target
            held.set()
            release.wait(60)
            return "abort"  # the killed client never gets this answer
        return None

    with serve_site(root, hook=hook) as site:
        first = worker(raw, site.base)
        try:
            assert held.wait(120), first.stderr.read() if first.poll() is not None else "crawler never reached the hold"
            os.kill(first.pid, signal.SIGKILL)
            first.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
            state["armed"] = False
            release.set()
        assert first.returncode == -signal.SIGKILL
        assert list(raw.glob(".*.warc.gz.open")), "the killed crawler left its open WARC file"

        second = worker(raw, site.base)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        report = json.loads(out)["killed"]

    articles = [f"/guidance/g{n:03d}" for n in range(1, ARTICLES + 1)]
    assert {path: site.served[path] for path in articles} == dict.fromkeys(articles, 1)  # answered once each
    requested_twice = [path for path in articles if site.requests[path] > 1]
    assert requested_twice == [state["held"]]        # only the request in flight at the kill was repeated
    assert report["fetched"] == ARTICLES - (KILL_AT - 1) and report["skipped_existing"] == KILL_AT - 1
    assert site.requests["/robots.txt"] == 2 and site.requests["/list/1"] == 2  # found again, by design

    records = [r["url"] for r in RawStore(raw).records(kinds=["article"])]
    assert sorted(records) == sorted(CANONICAL + path for path in articles)  # all stored, each once
    assert not list(raw.glob(".*.open")) and not list(raw.glob(".writer-*"))
