"""The harness: summaries over seeds, interval verdicts, checks before training, reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from gridformer.experiments import (
    EXPERIMENTS,
    Experiment,
    SeedRun,
    Verdict,
    get_experiment,
    run_experiment,
    summarize,
    write_report,
)
from gridformer.experiments.harness import check_output_folder, check_seeds, resolve_settings
from gridformer.experiments.verdicts import compare, compare_to_value, interval


def summary(values):
    return summarize(values)


# ---------------------------------------------------------------- summaries and intervals
def test_summarize_numbers_and_curves():
    s = summarize([1.0, 2.0, 4.0])
    assert s["values"] == [1.0, 2.0, 4.0]
    assert s["mean"] == pytest.approx(7 / 3)
    assert s["sd"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2
                                               + (4 - 7 / 3) ** 2) / 2))
    curve = summarize([[0.5, 1.0], [0.7, 3.0]])
    assert curve["mean"] == pytest.approx([0.6, 2.0])
    assert curve["sd"] == pytest.approx([0.2 / math.sqrt(2), 2.0 / math.sqrt(2)])
    assert curve["values"] == [[0.5, 1.0], [0.7, 3.0]]
    one = summarize([0.25])
    assert one == {"mean": 0.25, "sd": None, "values": [0.25]}
    assert summarize([1.0, float("nan")])["mean"] is None


def test_interval_is_the_student_t_interval_of_the_mean():
    values = [0.80, 0.84, 0.79, 0.83]
    low, high = interval(summarize(values))
    expected = stats.t.interval(0.95, 3, loc=np.mean(values), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)
    assert interval(summarize([0.5])) is None


@pytest.mark.parametrize(
    ("a", "b", "better", "outcome"),
    [
        ([0.90, 0.92, 0.91], [0.50, 0.52, 0.49], "higher", "holds"),
        ([0.50, 0.52, 0.49], [0.90, 0.92, 0.91], "higher", "does not hold"),
        ([0.50, 0.52, 0.49], [0.90, 0.92, 0.91], "lower", "holds"),
        ([0.80, 0.60, 0.95], [0.70, 0.85, 0.55], "higher", "inconclusive"),
        ([0.900, 0.902, 0.901], [0.899, 0.901, 0.900], "higher", "does not hold"),  # no gap
        ([0.9], [0.5], "higher", "inconclusive"),  # one seed
    ],
)
def test_compare_outcomes(a, b, better, outcome):
    v = compare("accuracy", "A", summary(a), "B", summary(b), margin=0.02, better=better)
    assert v.outcome == outcome
    assert v.text.startswith(f"accuracy: A {np.mean(a):.3f}")
    ending = {"holds": "— the claim holds", "does not hold": "— the claim does not hold",
              "inconclusive": "inconclusive"}[outcome]
    assert ending in v.text


def test_compare_to_value_outcomes():
    above = compare_to_value("r", summary([0.4, 0.45, 0.5]), 0.0, margin=0.1)
    assert above.outcome == "holds"
    assert "(95% interval [0.326, 0.574])" in above.text
    near = compare_to_value("r", summary([0.01, -0.02, 0.0]), 0.0, margin=0.1)
    assert near.outcome == "does not hold"
    assert "within 0.1 of 0" in near.text
    wide = compare_to_value("r", summary([0.5, -0.4, 0.3]), 0.0, margin=0.1)
    assert wide.outcome == "inconclusive"
    below = compare_to_value("err", summary([1e-4, 2e-4, 1.5e-4]), 0.01, margin=0.0,
                             better="lower")
    assert below.outcome == "holds"
    with pytest.raises(ValueError, match=r"outcome='maybe' is not one of \['holds', "):
        Verdict("maybe", "")


# ---------------------------------------------------------------- checks before training
def _toy(calls: list) -> Experiment:
    """An experiment whose 'training' is a deterministic function of the seed."""

    def run(seed, settings, device):
        calls.append(seed)
        return SeedRun({"score": settings["offset"] + 0.01 * seed,
                        "curve": [seed, 2.0 * seed]}, {"seed": seed})

    def verdict(metrics, settings):
        return compare_to_value("score", metrics["score"], 0.5, margin=0.0)

    def figure(result):
        from matplotlib.figure import Figure

        fig = Figure()
        fig.subplots().plot(result.metrics["curve"]["mean"])
        return fig

    return Experiment(name="toy", description="a toy", claim="score above 0.5",
                      quick={"offset": 0.9}, full={"offset": 0.1}, run=run, verdict=verdict,
                      figure=figure)


def test_run_experiment_records_seeds_and_summaries(tmp_path):
    calls: list[int] = []
    result = run_experiment(_toy(calls), mode="quick", seeds=3, device="cpu")
    assert calls == [0, 1, 2]
    assert result.metrics["score"]["values"] == pytest.approx([0.90, 0.91, 0.92])
    assert result.metrics["curve"]["mean"] == pytest.approx([1.0, 2.0])
    assert result.verdict.outcome == "holds"
    record = result.record()
    assert set(record) == {"command", "config", "metrics", "verdict", "seconds"}
    assert record["command"] == "gridformer experiment toy --quick --seeds 3 --device cpu"
    assert record["config"]["seeds"] == [0, 1, 2]
    assert record["config"]["settings"] == {"offset": 0.9}
    assert record["config"]["environment"]["device"] == "cpu"
    json.dumps(record)  # plain JSON
    full = run_experiment(_toy([]), mode="full", seeds=[4, 7], device="cpu")
    assert full.metrics["score"]["values"] == pytest.approx([0.14, 0.17])
    assert full.verdict.outcome == "does not hold"
    changed = run_experiment(_toy([]), seeds=2, device="cpu", overrides={"offset": 0.6})
    assert changed.command == ("run_experiment(get_experiment('toy'), mode='quick', seeds=[0, "
                               "1], device='cpu', overrides={'offset': 0.6})")
    assert changed.record()["config"]["overrides"] == {"offset": 0.6}

    paths = write_report(result, tmp_path / "out")
    assert [p.name for p in paths] == ["toy.png", "toy.md"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = paths[1].read_text()
    assert "**Verdict (holds).** score 0.910 ± 0.010 (claim: > 0.5)" in text
    assert "| `score` | 0.91 ± 0.01 | 0.9; 0.91; 0.92 |" in text
    assert "- command: `gridformer experiment toy --quick --seeds 3 --device cpu`" in text


def test_bad_settings_seeds_device_fail_before_any_run(tmp_path):
    calls: list[int] = []
    toy = _toy(calls)
    with pytest.raises(ValueError, match=r"unknown settings \['ofset'\] for experiment 'toy'; "
                                         r"valid: \['offset'\]"):
        run_experiment(toy, overrides={"ofset": 1.0})
    with pytest.raises(ValueError, match=r"seeds=0 must be >= 1 \(the number of seeds to run\)"):
        run_experiment(toy, seeds=0)
    with pytest.raises(ValueError, match=r"mode='medium' is not one of \['quick', 'full'\]"):
        run_experiment(toy, mode="medium")
    with pytest.raises(ValueError, match=r"device='tpu' is not a torch device"):
        run_experiment(toy, device="tpu")
    assert calls == []
    assert check_seeds([3, 5]) == [3, 5]
    with pytest.raises(ValueError, match=r"seeds=\[1, 1\] repeats a seed"):
        check_seeds([1, 1])
    assert resolve_settings(toy, "full", {"offset": 2.0}) == {"offset": 2.0}


def test_output_folder_that_cannot_be_written(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"out='.*file\.txt/sub' cannot be written: "):
        check_output_folder(blocker / "sub")
    assert check_output_folder(tmp_path / "new" / "dir").is_dir()
    assert list((tmp_path / "new" / "dir").iterdir()) == []  # the probe file is gone


def test_quick_and_full_settings_must_share_keys():
    with pytest.raises(ValueError, match=r"experiment 'x': quick and full settings must have "
                                         r"the same keys; differ in \['b'\]"):
        Experiment(name="x", description="", claim="", quick={"a": 1}, full={"a": 1, "b": 2},
                   run=lambda *a: None, verdict=lambda *a: None)


def test_registry_lists_every_experiment_and_names_the_valid_ones():
    assert list(EXPERIMENTS) == ["stencil", "occlusion", "counting", "segmentation",
                                 "resolution", "spatiotemporal", "distillation", "linear-probe",
                                 "pde-benchmark", "transformer-stencil"]
    for name in EXPERIMENTS:
        experiment = get_experiment(name)
        assert experiment.name == name
        assert "\n" not in experiment.description
        assert experiment.description
        assert set(experiment.quick) == set(experiment.full)
    with pytest.raises(ValueError, match=r"unknown experiment 'occlusions'; valid: stencil, "
                                         r"occlusion, counting, segmentation, resolution"):
        get_experiment("occlusions")
