"""``gridformer teleconnect``: bad input refused before training; files and record end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from gridformer import datasets
from gridformer.analysis import pattern_correlation
from gridformer.cli.main import main

PNG = b"\x89PNG\r\n\x1a\n"


def _planted(n_time=300, seed=0):
    ds = datasets.planted_teleconnection(n_time, shape=(12, 24), seed=seed,
                                         spectral_slope=-0.5)
    weights = np.cos(np.deg2rad(ds["lat"].values))[:, None] * ds["target_mask"]
    ds["target_index"] = ((ds["y"] * weights).sum(("lat", "lon")) / weights.sum()).assign_attrs(
        long_name="target-region mean")
    return ds.drop_vars(["source_mask", "target_mask"])


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.nc"
    datasets.write_netcdf(_planted(), path)
    return path


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


def test_bad_input_is_refused_before_training(data_file, tmp_path, capsys):
    base = ["teleconnect", str(data_file), "--out", str(tmp_path / "o")]
    err = _error(capsys, [*base, "--input", "sst", "--target", "target_index"])
    assert err == ("gridformer teleconnect: error: input variable 'sst' is not in data.nc; the "
                   "data variables are ['index', 'target_index', 'x', 'y']\n")
    err = _error(capsys, [*base, "--input", "x", "--target", "y", "--query", "95,10"])
    assert err == ("gridformer teleconnect: error: query=(95.0, 10.0): latitudes must lie in "
                   "[-90, 90] degrees\n")
    err = _error(capsys, [*base, "--input", "x", "--target", "y"])
    assert "target 'y' is a gridded field: say whose attention to map" in err
    err = _error(capsys, [*base, "--input", "x", "--target", "target_index", "--lead", "40"])
    assert err.startswith("gridformer teleconnect: error: too few time steps for the split: 300 "
                          "steps with lead=40 give 170/5/5 train/validation/test pairs")
    err = _error(capsys, [*base, "--input", "x", "--target", "target_index",
                          "--sweep-distance-bias", "1"])
    assert "--sweep-distance-bias needs at least 2 values, got [1.0]" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses the pair itself
        main(["teleconnect", str(data_file), "--input", "x", "--target", "y", "--query", "0,0",
              "--query-box", "0,1,0,1"])
    assert exit_info.value.code == 2
    assert "argument --query-box: not allowed with argument --query" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = _error(capsys, ["teleconnect", str(data_file), "--input", "x", "--target",
                          "target_index", "--out", str(blocker / "sub")])
    assert err == (f"gridformer teleconnect: error: --out={str(blocker / 'sub')!r} must be a "
                   f"folder, but {str(blocker)!r} is a file\n")
    assert not (tmp_path / "o").exists()  # nothing written for refused runs


@pytest.mark.slow
def test_index_target_files_and_record_agree(data_file, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["teleconnect", str(data_file), "--input", "x", "--target", "target_index",
               "--epochs", "3", "--seed", "1", "--json", "-", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert record["command"] == "teleconnect"
    assert record["config"]["inputs"] == ["x"]
    assert record["config"]["files"] == [str(data_file)]
    m = record["metrics"]
    assert m["target_kind"] == "index"
    assert m["pairs"] == {"train": 210, "val": 45, "test": 45}
    assert set(m["test_skill"]) == {"correlation", "rmse", "rmse_climatology"}
    assert "attention peaks at" in captured.err
    with xr.open_dataset(out / "teleconnection.nc") as ds:
        ds = ds.load()
    assert ds["attention"].dims == ("lat", "lon")
    assert ds["attention"].shape == (12, 24)
    assert ds["correlation"].dims == ("lat", "lon")
    assert {"eof1", "attention_tokens", "abs_correlation_tokens"} <= set(ds.data_vars)
    tokens = ds["attention_tokens"].rename(token_lat="lat", token_lon="lon")
    # the metrics are the file's maps compared: peak, pattern correlation, mass
    peak = tokens.argmax(("lat", "lon"))
    assert m["peak_lat"] == float(tokens["lat"][int(peak["lat"])])
    assert m["peak_lon"] == float(tokens["lon"][int(peak["lon"])])
    corr = ds["abs_correlation_tokens"].rename(token_lat="lat", token_lon="lon")
    assert m["pattern_correlation"] == pytest.approx(pattern_correlation(tokens, corr))
    top = corr >= 0.5 * float(corr.max())
    share = float(tokens.where(top).sum() / tokens.sum())
    assert m["attention_mass_in_top_correlation_region"] == pytest.approx(share)
    # the class token's weights plus the few it keeps for itself make one row
    assert float(tokens.sum()) + m["attention_to_class_token"] == pytest.approx(1.0, abs=1e-6)
    for name in ("teleconnection.png", "eof1.png"):
        assert (out / name).read_bytes()[:8] == PNG
    report = (out / "report.md").read_text()
    assert "| pattern_correlation |" in report
    assert not list(out.glob(".*"))


@pytest.mark.slow
def test_sweep_reports_distance_and_skill_per_bias(data_file, tmp_path):
    out_json, out = tmp_path / "sweep.json", tmp_path / "sweep"
    rc = main(["teleconnect", str(data_file), "--input", "x", "--target", "y", "--query-box",
               "30,60,280,320", "--sweep-distance-bias", "4,1,0", "--epochs", "1",
               "--json", str(out_json), "--out", str(out)])
    assert rc == 0
    record = json.loads(out_json.read_text())
    sweep = record["sweep"]
    assert sweep["distance_bias"] == [4.0, 1.0, 0.0]
    distance = sweep["mean_attention_distance_km"]
    assert distance[0] < distance[1] < distance[2]  # local -> global
    assert distance[0] < 0.5 * sweep["uniform_attention_distance_km"]
    assert len(sweep["skill"]) == 3
    assert sweep["skill_name"] == "test query_correlation"
    assert [r["distance_bias"] for r in record["metrics"]["runs"]] == [4.0, 1.0, 0.0]
    with xr.open_dataset(out / "teleconnection.nc") as ds:
        assert ds["attention"].dims == ("distance_bias", "lat", "lon")
        np.testing.assert_array_equal(ds["distance_bias"], [4.0, 1.0, 0.0])
    assert (out / "sweep.png").read_bytes()[:8] == PNG
    assert "| distance bias | mean attention distance (km) |" in (out / "report.md").read_text()
