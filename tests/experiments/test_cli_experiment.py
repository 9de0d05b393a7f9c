"""``gridformer experiment``: listing, bad input refused before any training, output files."""

from __future__ import annotations

import json

import pytest
import torch

import gridformer.experiments as experiments
from gridformer.cli.main import main
from gridformer.experiments import EXPERIMENTS, SeedRun
from gridformer.experiments.harness import Experiment
from gridformer.experiments.verdicts import compare_to_value

USAGE_ERROR = 2


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the CLI starts running an experiment."""

    def refuse(*args, **kwargs):
        raise AssertionError("an experiment started running")

    monkeypatch.setattr(experiments, "run_experiment", refuse)


def test_list_prints_every_experiment_with_one_line(capsys):
    assert main(["experiment", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(EXPERIMENTS)
    assert "seeing through a fence" in lines[1]


@pytest.mark.usefixtures("no_training")
def test_unknown_name_lists_the_valid_ones(capsys):
    assert main(["experiment", "occlusoin"]) == USAGE_ERROR
    assert capsys.readouterr().err.strip() == (
        "gridformer experiment: error: unknown experiment 'occlusoin'; valid: stencil, "
        "occlusion, counting, segmentation, resolution, spatiotemporal, distillation, "
        "linear-probe, pde-benchmark, transformer-stencil")
    assert main(["experiment"]) == USAGE_ERROR
    assert "give an experiment NAME or --list; valid: stencil," in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "0"], "argument --seeds: --seeds=0 must be >= 1 (the number of seeds"),
        (["--seeds", "two"], "argument --seeds: --seeds='two' is not an integer"),
        (["--quick", "--full"], "argument --full: not allowed with argument --quick"),
    ],
)
def test_argument_errors(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "counting", *argv])
    assert exit_info.value.code == USAGE_ERROR
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
def test_output_places_that_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["experiment", "counting", "--out", str(blocker / "results")]) == USAGE_ERROR
    err = capsys.readouterr().err
    assert f"error: --out='{blocker / 'results'}' cannot be written: Not a directory" in err
    assert main(["experiment", "counting", "--json", str(blocker / "r.json")]) == USAGE_ERROR
    assert f"error: --json folder='{blocker}' cannot be written: " in capsys.readouterr().err
    assert main(["experiment", "counting", "--json", str(tmp_path)]) == USAGE_ERROR
    assert "is a folder; give a file path (or - for stdout)" in capsys.readouterr().err


@pytest.mark.usefixtures("no_training")
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_missing_cuda_is_refused(capsys):
    assert main(["experiment", "counting", "--device", "cuda"]) == USAGE_ERROR
    assert ("device='cuda' asks for CUDA, which is not available here; use 'cpu' or 'auto'"
            in capsys.readouterr().err)


def _toy() -> Experiment:
    def run(seed, settings, device):
        return SeedRun({"score": settings["base"] + 0.01 * seed})

    def figure(result):
        from matplotlib.figure import Figure

        fig = Figure()
        fig.subplots().bar([0], [result.metrics["score"]["mean"]])
        return fig

    return Experiment(
        name="toy", description="toy", claim="score above 0.5", quick={"base": 0.9},
        full={"base": 0.2}, run=run, figure=figure,
        verdict=lambda m, s: compare_to_value("score", m["score"], 0.5, margin=0.0))


def test_a_run_writes_json_to_stdout_and_report_files(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(experiments, "get_experiment", lambda name: _toy())
    out = tmp_path / "results"
    assert main(["experiment", "toy", "--seeds", "2", "--device", "cpu", "--json", "-",
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # stdout holds the JSON record only
    assert set(record) == {"command", "config", "metrics", "verdict", "seconds"}
    assert record["command"] == "gridformer experiment toy --quick --seeds 2 --device cpu"
    assert record["config"]["seeds"] == [0, 1]
    assert record["metrics"]["score"]["values"] == pytest.approx([0.9, 0.91])
    assert record["verdict"].endswith("— the claim holds")
    assert "verdict (holds): score 0.905 ± 0.007" in captured.err  # the summary went to stderr
    assert sorted(p.name for p in out.iterdir()) == ["toy.md", "toy.png"]

    path = tmp_path / "r.json"
    assert main(["experiment", "toy", "--full", "--seeds", "3", "--device", "cpu",
                 "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    assert record["config"]["mode"] == "full"
    assert record["metrics"]["score"]["mean"] == pytest.approx(0.21)
    assert "verdict (does not hold): score 0.210 ± 0.010" in capsys.readouterr().out


@pytest.mark.usefixtures("no_training")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pde-benchmark", "--task", "heat-3d"],
         "unknown task 'heat-3d'; valid: advection-1d, burgers-1d, diffusion-reaction-1d"),
        (["pde-benchmark", "--model", "fno", "--model", "vit"],
         "unknown model 'vit'; valid: gridformer, gridformer-patch, gridformer-geodesic, "
         "stencil, fno, unet, cnn"),
        (["counting", "--task", "burgers-1d"],
         "--task is not a setting of experiment 'counting'"),
    ],
)
def test_task_and_model_flags_are_checked_before_training(capsys, argv, message):
    assert main(["experiment", *argv]) == USAGE_ERROR
    assert message in capsys.readouterr().err
