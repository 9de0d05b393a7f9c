"""The benchmark runner's bookkeeping: ratios and targets, skipped modules, the report file."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    import benchmarks.__main__ as runner
    from benchmarks import _common

    return runner, _common


def test_row_best_values_ratio_and_target(bench):
    _, common = bench
    # throughput: 10 units of work in 2 s (best) vs 4 s -> 5 vs 2.5 per s, ratio 2
    fast = common.row("c", ours=[2.5, 2.0], peer="p", theirs=[4.0, 5.0], work=10.0,
                      units="u/s", target=2.0)
    assert (fast["gridformer"], fast["peer_value"], fast["ratio"]) == (5.0, 2.5, 2.0)
    assert fast["target"] == ">= 2"
    assert fast["met"] is True
    assert fast["gridformer_stats"]["median"] == pytest.approx(4.5)
    # times: lower is better, the best is the shortest, 1.2 > 1.1 misses the target
    slow = common.row("c", ours=[12.0, 13.0], peer="p", theirs=[10.0, 11.0], work=0,
                      units="ms", target=1.1, higher_is_better=False)
    assert slow["ratio"] == pytest.approx(1.2)
    assert slow["target"] == "<= 1.1"
    assert slow["met"] is False


def test_runner_skips_missing_modules_and_writes_the_report(bench, monkeypatch, tmp_path,
                                                           capsys):
    runner, _ = bench
    fake = types.ModuleType("benchmarks.bench_fake")
    fake.run = lambda *, quick=False: {
        "name": "fake", "settings": {"quick": quick},
        "results": [{"case": "one", "gridformer": 3.0, "peer": "p", "peer_value": 1.5,
                     "ratio": 2.0, "units": "u/s", "target": ">= 2", "met": True}]}
    monkeypatch.setitem(sys.modules, "benchmarks.bench_fake", fake)
    monkeypatch.setattr(runner, "MODULES", ("bench_fake", "bench_absent"))
    out = tmp_path / "report.json"
    assert runner.main(["--quick", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True
    fake_report, absent = report["benchmarks"]
    assert fake_report["settings"] == {"quick": True}
    assert fake_report["load_average_before"] is not None
    assert absent["skipped"].startswith("cannot import benchmarks.bench_absent: No module")
    assert "threads" in report["environment"]
    assert "torch_threads" in report["environment"]["threads"]
    table = capsys.readouterr().out
    assert "fake: one" in table
    assert "bench_absent" in table
    assert "bench_absent: cannot import" in table


def test_device_only_modules_are_skipped_on_cuda(bench, monkeypatch):
    runner, _ = bench
    fake = types.ModuleType("benchmarks.bench_cpu_only")
    fake.run = lambda *, quick=False: {"name": "cpu", "results": [], "settings": {}}
    monkeypatch.setitem(sys.modules, "benchmarks.bench_cpu_only", fake)
    report = runner._run_module("bench_cpu_only", quick=True, device="cuda")
    assert report == {"name": "bench_cpu_only",
                      "skipped": "benchmarks.bench_cpu_only runs on the CPU only"}


def test_a_peer_missing_at_run_time_skips_the_module(bench, monkeypatch):
    runner, _ = bench
    fake = types.ModuleType("benchmarks.bench_needs_peer")

    def run(*, quick=False):
        import gridformer_absent_peer  # noqa: F401 - the peer is imported inside run()

    fake.run = run
    monkeypatch.setitem(sys.modules, "benchmarks.bench_needs_peer", fake)
    report = runner._run_module("bench_needs_peer", quick=True, device="cpu")
    assert report["name"] == "bench_needs_peer"
    assert report["skipped"].startswith(
        "benchmarks.bench_needs_peer needs 'gridformer_absent_peer', which is not installed")


def test_cpu_time_clock_ignores_waiting_and_is_restored(bench, monkeypatch, tmp_path):
    runner, common = bench
    fake = types.ModuleType("benchmarks.bench_sleepy")

    def run(*, quick=False):  # sleeping costs wall time, not CPU time
        ours, _theirs = common.compare(lambda: time.sleep(0.05), lambda: None, repeats=2)
        return {"name": "sleepy", "settings": {}, "results": [
            common.row("sleep", ours=ours, peer="p", theirs=[1.0, 1.0], work=0, units="s")]}

    fake.run = run
    monkeypatch.setitem(sys.modules, "benchmarks.bench_sleepy", fake)
    monkeypatch.setattr(runner, "MODULES", ("bench_sleepy",))
    for flags, clock in (([], "perf_counter (wall)"),
                         (["--cpu-time"], "process_time (CPU seconds)")):
        out = tmp_path / "r.json"
        assert runner.main([*flags, "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert report["environment"]["clock"] == clock
        slept = report["benchmarks"][0]["results"][0]["gridformer"]
        assert (slept < 0.02) if flags else (slept >= 0.05)
    assert common.CLOCK is time.perf_counter
