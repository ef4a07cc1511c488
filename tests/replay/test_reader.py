import gzip
import io
import json
import random

import zstandard

from gap_replay.build import sample_dir
from gap_replay.core.outcome import Drop
from gap_replay.replay.reader import iter_replay, set_name

LINES = [
    json.dumps({"text": "The Danube flows through ten countries.", "meta": {"redpajama_set_name": "RedPajamaWikipedia",
                                                                             "title": "Danube"}}),
    "{not json",
    json.dumps({"text": "   ", "meta": {}}),
    json.dumps({"text": "Plain text with no meta."}),
    json.dumps(["a list"]),
]
DATA = ("\n".join(LINES) + "\n").encode()


def outcomes(data: bytes):
    return list(iter_replay(io.BytesIO(data), name="r.jsonl"))


def test_documents_and_drops_from_plain_gzip_and_zstd():
    for data in (DATA, gzip.compress(DATA), zstandard.ZstdCompressor().compress(DATA)):
        result = outcomes(data)
        assert [type(item).__name__ for item in result] == ["dict", "Drop", "Drop", "dict", "Drop"]
        danube, bad_json, empty, plain, listed = result
        assert danube["source"] == "replay" and danube["subset"] == "wikipedia" and danube["title"] == "Danube"
        assert danube["id"].startswith("replay:wikipedia:") and len(danube["id"].rsplit(":", 1)[1]) == 16
        assert bad_json == Drop("file:r.jsonl#line2", "parse_error", bad_json.detail, "replay")
        assert empty.reason == "empty_text" and listed.reason == "parse_error"
        assert plain["subset"] == "unknown"


def test_truncated_gzip_keeps_what_was_read_and_reports_the_rest():
    rng = random.Random(0)
    lines = [json.dumps({"text": " ".join(str(rng.random()) for _ in range(50))}) for _ in range(2000)]
    data = gzip.compress("\n".join(lines).encode())
    result = outcomes(data[: len(data) // 2])
    assert 100 < len(result) < 2000
    assert isinstance(result[0], dict)
    assert result[-1].id == "file:r.jsonl" and result[-1].reason == "parse_error"


def test_set_names():
    assert set_name({"redpajama_set_name": "RedPajamaStackExchange"}) == "stackexchange"
    assert set_name({"set_name": "arxiv"}) == "arxiv"
    assert set_name({}) == "unknown"


def test_embedded_sample_replay_file_reads():
    (path,) = sorted((sample_dir() / "replay").glob("*.jsonl"))
    with open(path, "rb") as stream:
        result = list(iter_replay(stream, name=path.name))
    kept = [item for item in result if isinstance(item, dict)]
    assert len(kept) >= 20
    assert {item["subset"] for item in kept} >= {"wikipedia", "arxiv"}
    assert sorted(item.reason for item in result if isinstance(item, Drop)) == ["empty_text", "parse_error"]
