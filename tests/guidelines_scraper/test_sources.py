from __future__ import annotations

import dataclasses
import pickle

import pytest

from gap_replay.guidelines_scraper.local_site import sample_sources_path
from gap_replay.guidelines_scraper.sources import (
    GuidelineSource,
    SourceConfigError,
    load_sources,
    select_sources,
)

TAGS = ["aafp", "cco", "cdc", "cma", "cps", "drugs", "gc", "icrc", "idsa", "magic", "mayo", "nice", "rch", "spor",
        "who", "wikidoc"]


def write(tmp_path, text: str):
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_sources():
    sources = load_sources()
    assert list(sources) == TAGS
    assert {t for t, s in sources.items() if s.open} == {"cco", "cdc", "cma", "icrc", "nice", "spor", "who", "wikidoc"}
    assert {t for t, s in sources.items() if s.format == "pdf"} == {"cco", "cdc", "icrc", "spor", "who"}
    assert [t for t, s in sources.items() if s.requires_js] == ["magic"] and sources["magic"].note
    for tag, source in sources.items():
        assert isinstance(source, GuidelineSource) and source.tag == tag and source.seeds
        assert all(source.host_allowed(seed) for seed in source.seeds)
        assert source.audience in ("clinician", "patient", "both") and source.country
    assert sources["mayo"].audience == "patient"
    assert sources["cma"].allowed_hosts == ("joulecma.ca", "www.canada.ca")
    assert sources["nice"].allowed_hosts == ("www.nice.org.uk",)  # default: the base URL's host
    hash(sources["nice"])  # frozen, hashable and picklable (shipped to Spark workers)
    assert pickle.loads(pickle.dumps(sources["nice"])) == sources["nice"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sources["nice"].min_words = 3


# The dataset card's table (GUIDELINE_SOURCES.md section 1): articles, words as the card rounds them.
PAPER_COUNTS = {"aafp": (50, 9_400), "cco": (87, 199_000), "cdc": (621, 6_700_000), "cma": (431, 1_700_000),
                "cps": (54, 133_000), "drugs": (6_548, 4_100_000), "gc": (1_029, 1_000_000),
                "icrc": (49, 1_200_000), "idsa": (47, 646_000), "magic": (52, 415_000), "mayo": (1_100, 2_200_000),
                "nice": (1_656, 8_100_000), "rch": (384, 410_000), "spor": (217, 1_100_000), "who": (223, 3_100_000),
                "wikidoc": (33_058, 34_000_000)}


def test_builtin_sources_carry_the_papers_counts():
    sources = load_sources()
    assert {tag: (s.paper_articles, s.paper_words) for tag, s in sources.items()} == PAPER_COUNTS
    assert sum(s.paper_articles for s in sources.values()) == 45_606  # the table's own sum (section 1)


def test_paper_counts_override_and_validation(tmp_path):
    path = write(tmp_path, "[sources.who]\npaper_articles = 250\n")
    who = load_sources(path)["who"]
    assert (who.paper_articles, who.paper_words) == (250, 3_100_000)
    new = write(tmp_path, '[sources.new]\nname = "N"\nbase_url = "https://n.example.org"\nseeds = ["/"]\n'
                          'discovery = "static"\n')
    assert load_sources(new)["new"].paper_articles is None  # user sources need no paper counts


def test_builtin_patterns_behave():
    sources = load_sources()
    wikidoc, nice = sources["wikidoc"], sources["nice"]
    assert wikidoc.is_article("https://www.wikidoc.org/index.php/Hypertension_in_adults:_overview")
    for other in ("Special:AllPages", "Template:Infobox", "Category:Cardiology", "User_talk:Someone", "Main_Page"):
        assert not wikidoc.is_article(f"https://www.wikidoc.org/index.php/{other}")
    assert nice.is_article("https://www.nice.org.uk/guidance/ng136/chapter/Recommendations")
    assert nice.is_article("https://www.nice.org.uk/guidance/ng136/chapter/Committee-discussion")
    assert not nice.is_article("https://www.nice.org.uk/guidance/ng136/chapter/Committee-members")
    assert not nice.is_article("https://www.nice.org.uk/guidance/ng136/chapter/Update-information")


def test_partial_override_merges_fields(tmp_path):
    path = write(tmp_path, """
[sources.who]
min_words = 7
stop_markers = ["annex.*"]
""")
    builtin, merged = load_sources()["who"], load_sources(path)["who"]
    assert merged.min_words == 7 and merged.stop_markers == ("annex.*",)
    assert dataclasses.replace(merged, min_words=builtin.min_words, stop_markers=builtin.stop_markers) == builtin


def test_new_source_with_relative_seeds(tmp_path):
    path = write(tmp_path, """
[sources.local]
name = "Local guidelines"
base_url = "https://Guidelines.Example.org/"
seeds = ["/index.html", "https://guidelines.example.org/b#frag"]
discovery = "static"
open = true
""")
    sources = load_sources(path)
    assert list(sources)[-1] == "local"
    local = sources["local"]
    assert local.base_url == "https://guidelines.example.org"
    assert local.seeds == ("https://guidelines.example.org/index.html", "https://guidelines.example.org/b")
    assert local.allowed_hosts == ("guidelines.example.org",) and local.min_words == 100


def test_moving_base_url_moves_default_host(tmp_path):
    path = write(tmp_path, """
[sources.nice]
base_url = "https://mirror.example.org"
seeds = ["https://mirror.example.org/guidance"]
""")
    assert load_sources(path)["nice"].allowed_hosts == ("mirror.example.org",)


@pytest.mark.parametrize("toml, message", [
    ('[sources.who]\nseed = ["x"]\n', "source 'who', field 'seed': unknown field"),
    ('[sources.who]\nlink_pattern = "(unclosed"\n', "source 'who', field 'link_pattern': is not a valid regular expression"),
    ('[sources.who]\nstop_markers = ["[a-"]\n', "source 'who', field 'stop_markers': is not a valid regular expression"),
    ('[sources.who]\nseeds = []\n', "source 'who', field 'seeds': must list at least one URL"),
    ('[sources.who]\ndiscovery = "crawl"\n', "source 'who', field 'discovery': must be one of listing, sitemap, static"),
    ('[sources.who]\nformat = "docx"\n', "source 'who', field 'format'"),
    ('[sources.who]\nmin_words = "many"\n', "source 'who', field 'min_words': must be a non-negative integer"),
    ('[sources.who]\npaper_words = -1\n', "source 'who', field 'paper_words': must be a non-negative integer"),
    ('[sources.who]\npaper_articles = 1.5\n', "source 'who', field 'paper_articles': must be a non-negative integer"),
    ('[sources.who]\nlink_selector = "a[href"\n', "source 'who', field 'link_selector': is not a valid CSS"),
    ('[sources.who]\nnext_selector = "a:nope"\n', "source 'who', field 'next_selector': is not a valid CSS"),
    ('[sources.who]\nopen = "yes"\n', "source 'who', field 'open': must be true or false"),
    ('[sources.who]\ncontent_selector = "div[unclosed"\n', "source 'who', field 'content_selector': is not a valid CSS"),
    ('[sources.who]\nseeds = ["https://evil.example.com/"]\n', "source 'who', field 'seeds': seed 'https://evil.example.com/' is outside allowed_hosts"),
    ('[sources.who]\nseeds = ["ftp://www.who.int/x"]\n', "source 'who', field 'seeds': not an http(s) URL"),
    ('[sources.new]\nname = "N"\nbase_url = "https://n.example.org"\ndiscovery = "static"\n', "source 'new', field 'seeds': is required for a new source"),
    ('[sources.new]\nname = "N"\nbase_url = "n.example.org"\nseeds = ["/"]\ndiscovery = "static"\n', "source 'new', field 'base_url': must be an absolute http(s) URL"),
    ('[sources.new]\nname = "N"\nbase_url = "https://n.example.org"\nseeds = ["/"]\ndiscovery = "listing"\n', "source 'new', field 'link_pattern': (or link_selector) is required when discovery"),
    ('[sources.Bad-Tag]\nname = "N"\nbase_url = "https://n.example.org"\nseeds = ["/"]\ndiscovery = "static"\n', "source 'Bad-Tag': tag must be"),
    ('[source.who]\nmin_words = 1\n', "unknown top-level key"),
    ('[sources.who\n', "invalid TOML"),
])
def test_validation_errors_name_source_and_field(tmp_path, toml, message):
    path = write(tmp_path, toml)
    with pytest.raises(SourceConfigError) as info:
        load_sources(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(SourceConfigError, match="not found"):
        load_sources(tmp_path / "absent.toml")


def test_select_sources():
    sources = load_sources()
    assert [s.tag for s in select_sources(sources, ["who", "nice", "who"])] == ["who", "nice"]
    assert len(select_sources(sources, None)) == 16
    with pytest.raises(SourceConfigError, match=r"unknown source tag\(s\): whoo, nicer; known tags: aafp"):
        select_sources(sources, ["whoo", "nice", "nicer"])


def test_sample_sources_file_is_a_valid_override():
    sources = load_sources(sample_sources_path())
    who, nice, wikidoc = sources["who"], sources["nice"], sources["wikidoc"]
    assert who.format == "html" and who.base_url == "https://www.who.int" and who.start_markers == ()
    assert nice.discovery == "sitemap" and nice.content_selector == "div.chapter"
    assert nice.subtitle_selector is None and load_sources()["nice"].subtitle_selector
    assert wikidoc.seeds == ("https://www.wikidoc.org/index.php/Special:AllPages",)
