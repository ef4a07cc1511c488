import pytest

from gap_replay.core.config import ConfigError, parse_override
from gap_replay.stages import load_config


def test_defaults_follow_the_paper():
    config = load_config()
    assert config.spark.master == "local[*]" and config.spark.ui is False
    assert config.filter.languages == ["en"] and config.filter.min_language_score == 0.65
    assert config.mix.validation_fraction == {"guidelines": 0.05, "pubmed_abstracts": 0.03,
                                              "pubmed_papers": 0.03, "replay": 0.0}


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[spark]\nmaster = "local[2]"\n[mix]\nseed = 7\n[replay]\ninputs = ["a.jsonl"]\n[spark.conf]\n"spark.x" = "1"\n')
    config = load_config(path, ["mix.seed=9", "filter.languages=[\"en\", \"fr\"]", "pubmed.inputs=a.xml,b.xml"])
    assert config.spark.master == "local[2]" and config.spark.conf == {"spark.x": "1"}
    assert config.mix.seed == 9 and config.replay.inputs == ["a.jsonl"]
    assert config.filter.languages == ["en", "fr"]
    assert config.pubmed.inputs == ["a.xml", "b.xml"]


def test_base_layer_is_under_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[mix]\nseed = 3\n")
    config = load_config(path, base={"mix": {"seed": 1, "shard_rows": 5}})
    assert (config.mix.seed, config.mix.shard_rows) == (3, 5)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[mixer]\nseed = 1\n", r"unknown section \[mixer\]"),
        ("[mix]\nsed = 1\n", "mix: unknown setting 'sed'"),
        ("[mix]\nseed = \"one\"\n", "mix.seed: expected an integer"),
        ("[filter]\nmin_language_score = 2.0\n", "between 0 and 1"),
        ("[mix]\nvalidation_fraction = { replay = 1.5 }\n", r"validation_fraction.replay: must be in \[0, 1\)"),
        ("[mix\n", "invalid TOML"),
    ],
)
def test_errors_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_bad_override():
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/gap.toml")
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override("seed=1")
    with pytest.raises(ConfigError, match="unknown section 'nope'"):
        load_config(overrides=["nope.x=1"])
