"""The fixture/sample site server: URL to file mapping, conditional requests, request counting."""

from __future__ import annotations

import urllib3

from gap_replay.guidelines_scraper.local_site import host_mirror, serve_site
from gap_replay.guidelines_scraper.sources import load_sources


def test_mapping_conditional_requests_and_counts(tmp_path):
    (tmp_path / "guidance" / "ng1" / "chapter").mkdir(parents=True)
    (tmp_path / "guidance" / "ng1.html").write_text("<p>overview</p>")
    (tmp_path / "guidance" / "ng1" / "chapter" / "Recommendations").write_text("<p>chapter</p>")
    (tmp_path / "list%3Fpage=2").write_text("<p>page 2</p>")
    (tmp_path / "index.php").mkdir()
    (tmp_path / "index.php%3Ftitle=Special%3AAllPages&from=B").write_text("<p>from B</p>")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "index.html").write_text("<p>folder</p>")
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4 x")
    http = urllib3.PoolManager()
    with serve_site(tmp_path) as site:
        def get(path, **headers):
            return http.request("GET", site.base + path, headers=headers, redirect=False)

        assert get("/guidance/ng1").data == b"<p>overview</p>"                   # try_files $uri.html
        page = get("/guidance/ng1/chapter/Recommendations")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert get("/list?page=2").data == b"<p>page 2</p>" and get("/list?page=3").status == 404
        assert get("/list").status == 404                                        # no fallback without the query
        assert get("/index.php?title=Special:AllPages&from=B").data == b"<p>from B</p>"
        assert get("/folder").status == 301 and get("/folder").headers["Location"] == "/folder/"
        assert get("/folder/").data == b"<p>folder</p>" and get("/").status == 404   # no directory listings
        assert get("/doc.pdf").headers["Content-Type"] == "application/pdf"
        assert get("/../etc/passwd").status == 404

        etag, modified = page.headers["ETag"], page.headers["Last-Modified"]
        path = "/guidance/ng1/chapter/Recommendations"
        assert get(path, **{"If-None-Match": etag}).status == 304
        assert get(path, **{"If-None-Match": '"other"'}).status == 200
        assert get(path, **{"If-Modified-Since": modified}).status == 304
        assert get(path, **{"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}).status == 200
    assert site.requests[path] == 5 and site.served[path] == 5 and site.requests["/list?page=3"] == 1


def test_host_mirror_covers_every_allowed_host(tmp_path):
    who = load_sources()["who"]
    (tmp_path / "www.who.int").mkdir()
    assert host_mirror("http://127.0.0.1:9", [who]) == {
        "https://www.who.int": "http://127.0.0.1:9/www.who.int", "https://iris.who.int": "http://127.0.0.1:9/iris.who.int",
        "https://cdn.who.int": "http://127.0.0.1:9/cdn.who.int"}
    assert host_mirror("http://127.0.0.1:9/", [who], tmp_path) == {"https://www.who.int": "http://127.0.0.1:9/www.who.int"}
