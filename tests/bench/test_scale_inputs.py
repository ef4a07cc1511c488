"""bench/scale_inputs.py at tiny sizes: the generated inputs have the lengths and the skew that
bench/scale.py promises (issue 25), read back with the project's own parsers. No timing is checked."""

from __future__ import annotations

import json
import re
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale_inputs  # noqa: E402

from gap_replay.pubmed_ingest.jats import parse_jats  # noqa: E402
from gap_replay.pubmed_ingest.medline import DeleteCitation, iter_medline  # noqa: E402


@pytest.fixture(scope="module")
def text():
    return scale_inputs.Text(seed=7, pool=20_000)


def test_abstract_lengths_follow_the_real_deciles():
    lengths = scale_inputs.abstract_lengths(np.random.default_rng(1), 20_000)
    assert 1_400 < lengths.mean() < 1_600  # real: 1,498
    assert lengths.min() >= 172 and lengths.max() <= 3_640
    assert abs(np.median(lengths) - 1_556) < 60


def test_paper_lengths_have_pmc_mean_and_a_long_tail():
    lengths = scale_inputs.lognormal(np.random.default_rng(1), scale_inputs.PAPER_MEAN_CHARS,
                                     scale_inputs.PAPER_SIGMA, 50_000, scale_inputs.PAPER_MAX_CHARS)
    assert 31_000 < lengths.mean() < 34_000  # PMC: about 33k characters of text
    assert lengths.max() <= 500_000
    assert (lengths > 150_000).sum() > 100  # a long tail
    assert np.median(lengths) < 0.75 * lengths.mean()


def test_package_sizes_one_package_ten_times_the_others():
    assert scale_inputs.package_sizes(140, 5, 10) == [100, 10, 10, 10, 10]
    sizes = scale_inputs.package_sizes(1_351, 5, 10)
    assert sum(sizes) == 1_351 and all(9.5 <= sizes[0] / size <= 10.5 for size in sizes[1:])


def test_pmc_packages_parse_to_the_drawn_lengths_with_the_long_papers_in(tmp_path, text):
    skew = scale_inputs.Skew(big_package_factor=10, long_papers=2, cluster=0)
    written = scale_inputs.write_pmc(tmp_path / "pmc", text, 24, list(range(1, 1001)), 3, skew)
    assert [package["articles"] for package in written["packages"]] == [20, 2, 2]
    assert written["long_papers"] == 2
    lengths = {}
    for path in sorted((tmp_path / "pmc").iterdir()):
        with tarfile.open(path, "r:gz") as archive:
            names = [member for member in archive if member.isfile()]
            lengths[path.name] = [len(parse_jats(archive.extractfile(member).read(), name=member.name)["text"])
                                  for member in names]
    counts = [len(found) for found in lengths.values()]
    assert counts == [20, 2, 2]
    # The long papers (first of packages 0 and 1): about 500,000 characters of parsed text.
    first = [found[0] for found in lengths.values()]
    assert 450_000 < first[0] < 560_000 and 450_000 < first[1] < 560_000
    others = [length for found in lengths.values() for length in found[1:]] + [first[2]]
    assert all(length < 450_000 for length in others)
    assert 15_000 < np.mean(others) < 60_000  # 21 lognormal draws of mean 33k


def test_medline_abstracts_have_real_lengths_and_an_update_file(tmp_path, text):
    pmids = scale_inputs.write_medline(tmp_path / "pubmed", text, 400, 2, first_pmid=30_000_001)
    files = sorted((tmp_path / "pubmed").iterdir())
    assert len(files) == 3 and len(pmids) == 400
    documents, deleted, drops = [], [], []
    for path in files:
        for item in iter_medline(str(path), name=path.name):
            if isinstance(item, DeleteCitation):
                deleted += item.pmids
            elif isinstance(item, dict):
                documents.append(item)
            else:
                drops.append(item.reason)
    # 400 and 4 revised (1%); a template without an abstract (one of the sample's 30) gives no_abstract drops.
    assert len(documents) + len(drops) == 404 and set(drops) <= {"no_abstract"} and len(drops) < 30
    assert len(deleted) == 2  # 0.5%
    mean = np.mean([len(document["text"]) for document in documents])
    assert 1_250 < mean < 1_750  # real abstracts: 1,498 characters with the title


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[at:at + size]) for at in range(len(words) - size + 1)}


def test_replay_has_600_word_documents_and_a_near_duplicate_cluster_spread_over_files(tmp_path, text):
    written = scale_inputs.write_replay(tmp_path / "replay", text, 300, 3, cluster=200)
    assert written["documents"] == 500 and written["near_duplicate_cluster"] == 200
    plain, cluster, per_file = [], [], []
    for path in sorted((tmp_path / "replay").iterdir()):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        per_file.append(sum(1 for row in rows if row["meta"].get("cluster")))
        for row in rows:
            (cluster if row["meta"].get("cluster") else plain).append(row["text"])
    assert len(plain) == 300 and len(cluster) == 200
    assert all(count > 30 for count in per_file)  # spread over every file
    words = np.mean([len(document.split()) for document in plain])
    assert 480 < words < 720  # RedPajama: about 600 words
    first, others = _shingles(cluster[0]), [_shingles(document) for document in cluster[1:20]]
    similarities = [len(first & other) / len(first | other) for other in others]
    assert min(similarities) > 0.8  # over the dedup threshold
    assert len(set(cluster)) > 190  # near-identical, not identical
    plain_similarity = len(_shingles(plain[0]) & _shingles(plain[1])) / len(_shingles(plain[0]) | _shingles(plain[1]))
    assert plain_similarity < 0.1
