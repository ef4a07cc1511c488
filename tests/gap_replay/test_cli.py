"""The CLI's contract on bad input: a one-line message, a non-zero exit, no output left behind."""

import argparse
import subprocess
import sys

import pytest

from gap_replay.cli import EXIT_USAGE, build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("gap-replay: error:")]


def test_missing_input_is_one_line_and_creates_nothing(spark, capsys, tmp_path):
    code, _, err = run(capsys, "filter", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "out"))
    assert code == EXIT_USAGE
    assert error_lines(err) == [f"gap-replay: error: input not found: {tmp_path / 'nope'}"]
    assert not (tmp_path / "out").exists()


def test_unfinished_input_is_refused(spark, capsys, tmp_path):
    (tmp_path / "half" / ".incomplete").mkdir(parents=True)
    code, _, err = run(capsys, "dedup", "--input", str(tmp_path / "half"), "--output", str(tmp_path / "out"))
    assert code == EXIT_USAGE and "unfinished output (no _SUCCESS)" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["mix", "--input", "x", "--output", "y", "--set", "mix.seed=abc"], "mix.seed: expected an integer"),
        (["mix", "--input", "x", "--output", "y", "--set", "seed=1"], "expected section.key=value"),
        (["mix", "--input", "x", "--output", "y", "--config", "/no/such.toml"], "config file not found"),
        (["mix", "--input", "x", "--output", "y", "--spark-conf", "novalue"], "expected KEY=VALUE"),
        (["pubmed", "--input", "/no/such/dir", "--output", "y"], "input not found: /no/such/dir"),
    ],
)
def test_bad_arguments(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE
    (line,) = error_lines(err)
    assert message in line


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["filter", "--output", "x"])  # --input missing
    assert exit_info.value.code == 2 and "--input" in capsys.readouterr().err


def test_existing_output_from_other_settings_needs_overwrite(spark, capsys, tmp_path):
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"text": "The Rhine is a river in Europe.", "meta": {"redpajama_set_name": "RedPajamaWikipedia"}}\n')
    out = str(tmp_path / "replay")
    code, summary, _ = run(capsys, "replay", "--input", str(replay), "--output", out)
    assert code == 0 and summary.splitlines()[1].split()[:3] == ["replay", "1", "1"]
    replay.write_text(replay.read_text() + '{"text": "The Elbe is another.", "meta": {}}\n')
    code, _, err = run(capsys, "replay", "--input", str(replay), "--output", out)
    assert code == EXIT_USAGE and "pass --overwrite" in err
    code, summary, _ = run(capsys, "replay", "--input", str(replay), "--output", out, "--overwrite")
    assert code == 0 and summary.splitlines()[1].split()[:3] == ["replay", "2", "2"]


@pytest.mark.slow
def test_bad_master_gives_one_line_without_java_trace(tmp_path):
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"text": "x"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "gap_replay.cli", "replay", "--input", str(replay), "--output", str(tmp_path / "o"),
         "--master", "nonsense://nowhere"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and "could not start Spark with master 'nonsense://nowhere'" in lines[0]
    assert "\tat org.apache" not in result.stderr


def _options_without_help(parser: argparse.ArgumentParser, command: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options_without_help(sub, f"{command} {name}")
        elif not action.help and not isinstance(action, argparse._HelpAction):
            yield command, action.option_strings or action.dest


def test_every_option_of_every_command_has_help():
    assert list(_options_without_help(build_parser(), "gap-replay")) == []
