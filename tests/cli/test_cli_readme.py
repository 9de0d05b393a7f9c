"""The README's commands run as written: they parse, the files and make targets they name exist,
and the output it shows is the output the command prints."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from gridformer.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _commands(prefix: str) -> list[str]:
    """Shell lines of the README's code blocks starting with ``prefix``, backslash continuations
    joined; in blocks that show a session (``$ `` prompts), only the prompted lines."""
    found = []
    for block in _code_blocks(README):
        lines = re.sub(r"\\\n\s*", " ", block).splitlines()
        if any(line.startswith("$ ") for line in lines):  # a session: the rest is output
            lines = [line.removeprefix("$ ") for line in lines if line.startswith("$ ")]
        found += [line.strip() for line in lines if line.startswith(prefix)]
    return found


GRIDFORMER_COMMANDS = _commands("gridformer ")


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    for stop in ("|", ">", "2>"):  # shell plumbing after the command
        if stop in words:
            words = words[: words.index(stop)]
    return words[1:]


def test_the_readme_shows_gridformer_commands():
    assert len(GRIDFORMER_COMMANDS) >= 5
    assert any("--velocity 0.5,-0.25" in c for c in GRIDFORMER_COMMANDS)
    assert any("--velocity -0.3,0.6" in c for c in GRIDFORMER_COMMANDS)


@pytest.mark.parametrize("command", GRIDFORMER_COMMANDS, ids=range(len(GRIDFORMER_COMMANDS)))
def test_readme_command_parses(command):
    args = build_parser().parse_args(_argv(command))
    assert args.command == _argv(command)[0]


def test_readme_error_example_prints_what_the_readme_shows(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shown = re.search(r"^\$ (gridformer solve heat .*)\n(gridformer solve: error: .*)$", README,
                      flags=re.MULTILINE)
    assert shown is not None
    assert main(_argv(shown.group(1))) == 2
    assert capsys.readouterr().err == shown.group(2) + "\n"


@pytest.mark.parametrize("script", sorted(set(re.findall(r"python (\S+\.py)", README))))
def test_readme_scripts_exist(script):
    assert (ROOT / script).is_file()


@pytest.mark.parametrize("target", sorted(set(re.findall(r"^make (\w+)", "\n".join(
    _code_blocks(README)), flags=re.MULTILINE)) | set(re.findall(r"`make (\w+)`", README))))
def test_readme_make_targets_exist(target):
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)


@pytest.mark.slow
def test_benchmark_runs_as_the_readme_says():
    out = subprocess.run(
        [sys.executable, "benchmarks/bench_solvers.py", "--grid", "8,8", "--samples", "2",
         "--steps", "3", "--repeats", "1"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
    )
    result = json.loads(out.stdout)
    assert result["grid"] == [8, 8]
    assert set(result["results"]) == {"heat", "advection_upwind", "burgers"}
    for case in result["results"].values():
        assert case["speedup_vs_numpy"]["numpy"] == 1.0
        for device, seconds in case["seconds"].items():
            rate = case["cell_updates_per_second"][device]
            assert rate == pytest.approx(2 * 8 * 8 * 3 / seconds)
