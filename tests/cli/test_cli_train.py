"""``gridformer train --config``: NetCDF and solver datasets, files written, bad configs."""

import json
import re

import numpy as np
import pytest
import xarray as xr
import yaml

from gridformer.cli.main import main


@pytest.fixture
def netcdf(tmp_path):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(6, 4, 8)).astype(np.float32)
    u[:, :2, 2:4] = np.nan  # a "land" patch: an invalid token after 2 x 2 patching
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), u), "z": (("time", "lat", "lon"), u * 2)},
        coords={"time": np.arange(6), "lat": [-45.0, -15.0, 15.0, 45.0],
                "lon": np.arange(8) * 45.0},
    )
    path = tmp_path / "field.nc"
    ds.to_netcdf(path)
    return path


def write_config(tmp_path, config, suffix=".yaml"):
    path = tmp_path / f"cfg{suffix}"
    path.write_text(yaml.safe_dump(config) if suffix == ".yaml" else json.dumps(config))
    return path


def test_train_on_netcdf_writes_checkpoint_history_and_json(tmp_path, netcdf):
    config = {
        "data": {"path": str(netcdf), "variables": ["t2m"], "patch_size": 2, "val_fraction": 0.2},
        "model": {"preset": "tiny", "position": "geodesic"},
        "training": {"steps": 3, "batch_size": 2, "device": "cpu", "loss": "lat_weighted_mse"},
    }
    out = tmp_path / "out"
    code = main(["train", "--config", str(write_config(tmp_path, config)), "--out", str(out),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    assert (out / "checkpoint.pt").is_file()
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 3
    assert len(history["val_loss"]) >= 1
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["command"] == "train"
    assert record["metrics"]["data"]["train_pairs"] == 4
    assert record["metrics"]["model"]["in_features"] == 4  # 2 x 2 patch of one variable
    assert np.isfinite(record["metrics"]["final_train_loss"])


def test_train_baseline_from_json_config(tmp_path, netcdf):
    import torch

    config = {"data": {"path": str(netcdf)},
              "model": {"kind": "local_cnn", "hidden": 4, "layers": 1},
              "training": {"steps": 2, "batch_size": 4, "device": "cpu"}}
    code = main(["train", "--config", str(write_config(tmp_path, config, ".json")),
                 "--out", str(tmp_path / "o")])
    assert code == 0
    state = torch.load(tmp_path / "o" / "checkpoint.pt", weights_only=True)
    assert state["model_class"] == "LocalCNN"
    assert state["step"] == 2


def test_train_on_solver_dataset_with_json_on_stdout(tmp_path, capsys):
    config = {
        "data": {"solver": {"equation": "heat", "params": {"diffusivity": 0.1}, "grid": [8, 8],
                            "steps": 4, "samples": 2}},
        "model": {"preset": "stencil"},
        "training": {"steps": 2, "batch_size": 4, "device": "cpu"},
    }
    assert main(["train", "--config", str(write_config(tmp_path, config)),
                 "--out", str(tmp_path / "o"), "--json", "-"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # only the record on stdout
    assert record["command"] == "train"
    assert record["metrics"]["data"]["variables"] == ["u"]
    assert record["metrics"]["data"]["pairs"] == 2 * 4  # samples x (steps + 1 states - lead)
    assert record["metrics"]["steps"] == 2
    assert f"trained 2 steps: train loss {record['metrics']['final_train_loss']:.4g}" \
        in captured.err


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"model": {}}, r"missing data"),
        ({"data": {}, "optim": {}}, r"config sections \['optim'\]"),
        ({"data": {"path": "x.nc", "solver": {}}}, r"exactly one of 'path'"),
        ({"data": {"path": "PATH", "lead": 9}}, r"lead=9 needs 1 <= lead < 6"),
        ({"data": {"path": "PATH"}, "training": {"stepz": 1}}, r"unknown training keys"),
        ({"data": {"solver": {"equation": "heat", "params": {"diffusivity": 0.1}, "grid": [4, 4],
                              "steps": 2}, "variables": ["v"]}},
         r"data.variables \['v'\] not in the data; it has \['u'\]"),
        ({"data": {"solver": {"equation": "heat", "grid": [4, 4], "steps": 2}}},
         r"data.solver.params: missing parameter for heat: diffusivity= "),
        ({"data": {"path": "PATH"}, "model": {"preset": "huge"}}, r"model.preset='huge'"),
        ({"data": {"path": "PATH"}, "model": {"heads": 3}, "training": {"steps": 1}},
         r"heads=3 does not divide dim=16"),
    ],
)
def test_bad_config_is_exit_2_with_message(tmp_path, netcdf, capsys, config, match):
    text = json.dumps(config).replace("PATH", str(netcdf))
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "gridformer train: error:" in err
    assert re.search(match, err), err


@pytest.mark.parametrize(("suffix", "text", "kind"), [(".yaml", "data: [unclosed", "YAML"),
                                                      (".json", '{"data": ', "JSON")])
def test_malformed_config_file_is_exit_2_naming_the_file(tmp_path, capsys, suffix, text, kind):
    path = tmp_path / f"broken{suffix}"
    path.write_text(text)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"gridformer train: error: config '{path}' is not valid {kind}" in err
    assert "Traceback" not in err


def test_out_that_is_a_file_is_refused_before_training(tmp_path, netcdf, capsys, monkeypatch):
    import gridformer.training

    def must_not_run(*args, **kwargs):
        raise AssertionError("fit ran although --out is unusable")

    monkeypatch.setattr(gridformer.training, "fit", must_not_run)
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    config = write_config(tmp_path, {"data": {"path": str(netcdf)}})
    assert main(["train", "--config", str(config), "--out", str(blocker)]) == 2
    assert capsys.readouterr().err == (
        f"gridformer train: error: --out={str(blocker)!r} must be a folder, "
        f"but {str(blocker)!r} is a file\n")
