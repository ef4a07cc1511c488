"""One crawler per crawl unit, whatever Spark does: a crawl lease in the raw store makes a second attempt of a
unit's task (a retry while the first still runs, a speculative copy) wait for the first, and an attempt after
a failed or killed one takes the answers that run already stored instead of fetching them again.

The sites and sources are those of ``crawl_retry_run.py`` (a listing source and a sitemap source whose
robots.txt names its sitemap index), which also runs the crawl on Spark with task retries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from gap_replay.guidelines_scraper import job
from gap_replay.guidelines_scraper.crawl import crawl
from gap_replay.guidelines_scraper.job import CrawlTask, run_crawl_task
from gap_replay.guidelines_scraper.local_site import serve_site
from gap_replay.guidelines_scraper.raw_store import RawStore, crawl_lease

from .conftest import FIXED_NOW, html
from .crawl_retry_run import LISTED_ARTICLES, MAPPED_ARTICLES, make_sites, mirror, sources, stored

RUN = Path(__file__).with_name("crawl_retry_run.py")
ROOT = Path(__file__).resolve().parents[2]


def failing_before(fetcher, request: int):
    """`fetcher`, failing (raising) when about to make its `request`-th request."""
    fetch, calls = fetcher.fetch, []

    def fetch_or_fail(url, **kwargs):
        calls.append(url)
        if len(calls) == request:
            raise RuntimeError(f"the attempt fails before its request {request} ({url})")
        return fetch(url, **kwargs)

    fetcher.fetch = fetch_or_fail
    return fetcher


def test_an_attempt_after_failed_ones_takes_their_answers_and_fetches_nothing_again(tmp_path, make_fetcher):
    make_sites(tmp_path / "site")
    with serve_site(tmp_path / "site") as site:  # undisturbed
        with RawStore(tmp_path / "undisturbed", run="run-1") as store:
            undisturbed = crawl(sources(), store, fetcher=make_fetcher(), mirror=mirror(site.base))
    assert set(site.requests.values()) == {1}

    raw = tmp_path / "raw"
    with serve_site(tmp_path / "site") as site:
        # Two attempts of the run fail mid-crawl: the first in the listing pages, the second in the articles.
        for request in (3, 6):
            with RawStore(raw, run="run-1") as store, pytest.raises(RuntimeError, match="fails before"):
                crawl(sources(), store, fetcher=failing_before(make_fetcher(), request), mirror=mirror(site.base))
        with RawStore(raw, run="run-1") as store:
            report = crawl(sources(), store, fetcher=make_fetcher(), mirror=mirror(site.base))
        assert set(site.requests.values()) == {1}  # no page twice: robots.txt, listings, sitemaps, articles
        assert report.sources == undisturbed.sources  # counted as the undisturbed crawl counts them
        assert stored(raw) == stored(tmp_path / "undisturbed")  # and stored as it stored them, each once

        # A new run looks for new articles: robots.txt, listings and sitemaps again, no stored article.
        with RawStore(raw, run="run-2") as store:
            again = crawl(sources(), store, fetcher=make_fetcher(), mirror=mirror(site.base))
    twice = sorted(path for path, count in site.requests.items() if count == 2)
    assert twice == ["/listed/list/1", "/listed/list/2", "/listed/list/3", "/listed/robots.txt",
                     "/mapped/robots.txt", "/mapped/sitemap-1.xml", "/mapped/sitemap-2.xml.gz",
                     "/mapped/sitemap-index.xml"]
    assert set(site.requests.values()) == {1, 2}
    assert [again.sources[tag].skipped_existing for tag in ("listed", "mapped")] == [LISTED_ARTICLES, MAPPED_ARTICLES]


def test_the_first_request_after_an_earlier_attempt_waits_out_the_host_delay(server, make_fetcher, clock):
    server.route("/page", html("page"))
    fetcher = make_fetcher(min_delay=5.0, obey_robots=False)
    fetcher.requested_before(f"{server.base}/other", FIXED_NOW - timedelta(seconds=2))  # an earlier attempt's
    assert fetcher.fetch(f"{server.base}/page").ok
    assert clock.sleeps == [3.0]  # the delay counted from the earlier attempt's request, not from nothing


def test_two_attempts_of_one_crawl_task_never_both_fetch(tmp_path, monkeypatch):
    """A speculative copy (or a retry started while the first attempt still runs): the copy waits for the
    lease while the first attempt crawls, then takes every answer from the store: it makes no request."""
    make_sites(tmp_path / "site")
    first_in, second_waits = threading.Event(), threading.Event()
    holders: list[str] = []

    def hook(target: str):
        first_in.set()
        assert second_waits.wait(60), "the second attempt never waited for the lease"
        return None

    def waiting(tags, holder):
        holders.append(holder)
        second_waits.set()

    monkeypatch.setattr(job, "_waiting_for_lease", waiting)
    reports: dict[str, dict] = {}
    with serve_site(tmp_path / "site", hook=hook) as site:
        def attempt(name: str) -> None:
            task = CrawlTask(tuple(sources()), str(tmp_path / "raw"),
                             (("min_delay", 0.0), ("read_timeout", 60.0), ("user_agent", f"gap-replay/0.1 ({name})")),
                             tuple(mirror(site.base).items()), run="run-1")
            reports[name] = run_crawl_task(task)

        first = threading.Thread(target=attempt, args=("first",))
        first.start()
        assert first_in.wait(60)  # the first attempt holds the lease and is in its first request
        second = threading.Thread(target=attempt, args=("second",))
        second.start()
        first.join(120)
        second.join(120)
    assert holders and holders[0].startswith(f"pid {os.getpid()} on ")  # the holder, as it wrote itself
    assert {headers["user-agent"] for _, headers in site.log} == {"gap-replay/0.1 (first)"}  # one crawler fetched
    assert set(site.requests.values()) == {1}
    assert reports["second"] == reports["first"]  # the copy's report: the same crawl, from the store
    assert len(stored(tmp_path / "raw")) == len(site.requests)  # each answer stored once
    assert not list((tmp_path / "raw").glob(".lease-*"))  # leases deleted as they are let go


HOLDER = """
import sys, time
from gap_replay.guidelines_scraper.raw_store import crawl_lease
with crawl_lease(sys.argv[1], ["listed", "mapped"]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_lets_go_of_its_lease(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        waited, said, taken, release = [], threading.Event(), threading.Event(), threading.Event()

        def wait(who: str) -> None:
            waited.append(who)
            said.set()

        def take():
            with crawl_lease(tmp_path, ["mapped"], on_wait=wait):
                taken.set()
                release.wait(60)

        taker = threading.Thread(target=take)
        taker.start()
        assert said.wait(60) and not taken.is_set()  # the holder is alive: this one waits
        assert waited[0].startswith(f"pid {holder.pid} on ")  # and says for whom
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops its locks
        assert taken.wait(60)
        assert (tmp_path / ".lease-listed.lock").exists() and crawl_lease_free(tmp_path, "listed")  # left, yet free
        release.set()
        taker.join(60)
    finally:
        holder.kill()
        holder.wait(30)


def crawl_lease_free(directory: Path, name: str) -> bool:
    """Whether the lease `name` is taken at once (its holder is gone)."""
    waited = []
    with crawl_lease(directory, [name], on_wait=waited.append):
        pass
    return not waited


@pytest.mark.slow
def test_a_crawl_under_spark_task_retries_fetches_no_page_twice(tmp_path):
    """On local[2,4], the first two attempts of both crawl tasks fail mid-crawl (an exception, or the
    Python worker SIGKILLed) and the next finishes: the site saw each URL once, and the crawl stored and reported
    what the undisturbed crawl did."""
    done = subprocess.run([sys.executable, str(RUN), str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    undisturbed = results["none"]
    assert len(undisturbed["requests"]) == 2 + 3 + LISTED_ARTICLES + 3 + MAPPED_ARTICLES  # robots, listings...
    for mode in ("none", "fail", "kill"):
        crawled = results[mode]
        if mode != "none":
            # both disturbed twice, then finished (an attempt Spark itself lost would show in the log)
            assert crawled["disturbed"] == ["listed.0", "listed.1", "mapped.0", "mapped.1"], crawled["attempts"]
            assert sorted(tags for tags, _, _, outcome in crawled["attempts"] if outcome == "finished") == \
                ["listed", "mapped"], crawled["attempts"]
        assert crawled["requests"] == dict.fromkeys(undisturbed["requests"], 1), mode  # each URL requested once
        assert crawled["records"] == undisturbed["records"], mode
        assert crawled["reports"] == undisturbed["reports"], mode
        assert crawled["left"] == [], mode  # no open file, writer lock or lease left behind


def test_a_lease_name_must_be_a_file_name(tmp_path):
    with pytest.raises(ValueError, match="lease name"):
        with crawl_lease(tmp_path, ["../escape"]):
            pass
    assert list(tmp_path.iterdir()) == []

