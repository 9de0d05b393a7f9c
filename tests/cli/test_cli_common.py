"""What every command shares: negative numbers as values, ``--json -``, the result record."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from gridformer.cli.common import (
    StdoutTarget,
    json_target,
    parse_float_tuple,
    to_jsonable,
    write_result,
)
from gridformer.cli.main import build_parser


@pytest.mark.parametrize(
    ("argv", "name", "expected"),
    [
        (["solve", "advection", "--velocity", "-0.3,0.6"], "velocity", (-0.3, 0.6)),
        (["solve", "advection", "--velocity", "-0.3"], "velocity", (-0.3,)),
        (["solve", "advection", "--velocity", "-.5,-1e-2"], "velocity", (-0.5, -0.01)),
        (["solve", "heat", "--dt", "-1e-3"], "dt", -1e-3),
        (["stencil", "--velocity", "-0.25,0.5"], "velocity", (-0.25, 0.5)),
        (["stencil", "--velocity", "-1, -2"], "velocity", (-1.0, -2.0)),
        (["stencil", "--spacing", "-1E+0,2"], "spacing", (-1.0, 2.0)),
    ],
)
def test_negative_numbers_are_values_not_options(argv, name, expected):
    args = build_parser().parse_args(argv)
    assert getattr(args, name) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "heat", "-q"], "unrecognized arguments: -q"),
        (["solve", "heat", "--velocity", "--dt", "1"],
         "argument --velocity: expected one argument"),
        (["solve", "heat", "--velocity", "-0.3,x"],
         "argument --velocity: '-0.3,x' is not a comma-separated list of floats (e.g. '0.6,-0.3')"),
        (["stencil", "--grid", "-32,x"],
         "argument --grid: '-32,x' is not a comma-separated list of ints (e.g. '64,64')"),
    ],
)
def test_options_and_malformed_values_still_fail(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_parse_float_tuple_keeps_signs_and_exponents():
    assert parse_float_tuple("0.6,-0.3,1e-3") == (0.6, -0.3, 0.001)


def test_json_target():
    assert json_target("out/m.json") == Path("out/m.json")
    target = json_target("-")
    assert isinstance(target, StdoutTarget)
    assert str(target) == "-"


def test_write_result_to_a_stream_and_to_a_file(tmp_path):
    stream = io.StringIO()
    record = write_result(StdoutTarget(stream), command="x", config={"grid": (8, 8)},
                          metrics={"err": np.float32(0.5), "bad": math.inf}, started=0.0)
    assert json.loads(stream.getvalue()) == record
    assert record["config"] == {"grid": [8, 8]}
    assert record["metrics"] == {"err": 0.5, "bad": "inf"}
    write_result(tmp_path / "r.json", command="x", config={}, metrics={"n": np.int64(3)},
                 started=0.0)
    assert json.loads((tmp_path / "r.json").read_text())["metrics"] == {"n": 3}


def test_to_jsonable_paths_and_arrays():
    assert to_jsonable({1: Path("a/b"), "x": np.arange(3)}) == {"1": "a/b", "x": [0, 1, 2]}
