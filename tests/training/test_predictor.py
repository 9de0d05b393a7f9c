"""load_model -> Predictor: checkpoints carry what is needed to take and return xr.Dataset."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

from gridformer.cli.main import main
from gridformer.model import TINY, GridFormer, LocalCNN
from gridformer.tokenize import TokenLayout
from gridformer.training import (
    Predictor,
    fit,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from gridformer.training.data import load_pairs


@pytest.fixture
def netcdf(tmp_path):
    rng = np.random.default_rng(1)
    u = 280.0 + 10.0 * rng.normal(size=(5, 4, 8))
    u[:, :2, 2:4] = np.nan  # land: a whole 2 x 2 patch
    u[:, 3, 7] = np.nan  # one missing cell inside an otherwise valid patch
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), u, {"units": "K"}),
         "z": (("time", "lat", "lon"), 50.0 + 0.5 * u, {"units": "m"})},
        coords={"time": np.arange(5.0), "lat": [-67.5, -22.5, 22.5, 67.5],
                "lon": np.arange(8) * 45.0 + 22.5},
        attrs={"title": "test"},
    )
    path = tmp_path / "field.nc"
    ds.to_netcdf(path)
    return path, ds


def _doubling_cnn(features):
    """A 1x1 LocalCNN that doubles every (normalised) token feature."""
    model = LocalCNN(features, features, layers=1, kernel_size=1)
    with torch.no_grad():
        model.convs[0].weight.copy_(2.0 * torch.eye(features)[..., None, None])
        model.convs[0].bias.zero_()
    return model


def test_predict_normalises_tokenizes_runs_decodes_and_undoes_the_normalisation(tmp_path,
                                                                                 netcdf):
    """With a model that doubles its normalised input, the forecast is 2 x - mean per variable
    (the std cancels), on the input's grid, NaN where the input is NaN."""
    path, ds = netcdf
    pairs = load_pairs({"path": str(path), "patch_size": 2, "val_fraction": 0.25})
    model = _doubling_cnn(pairs.source["features"])
    save_checkpoint(tmp_path / "m.pt", model, metadata=pairs.metadata, step=7)

    predictor = load_model(tmp_path / "m.pt")
    assert isinstance(predictor, Predictor)
    assert predictor.variables == ["t2m", "z"]
    assert predictor.lead == 1
    assert predictor.step == 7
    forecast = predictor.predict(ds)
    assert isinstance(forecast, xr.Dataset)
    assert set(forecast.coords) == set(ds.coords)
    for name in ds.coords:
        xr.testing.assert_identical(forecast[name], ds[name])
    for name in ("t2m", "z"):
        mean = np.nanmean(ds[name].isel(time=slice(0, 3)).values)  # the 3 training inputs
        expected = 2.0 * ds[name].values - mean
        np.testing.assert_allclose(forecast[name].values, expected, rtol=1e-5, equal_nan=True)
        assert forecast[name].dims == ds[name].dims
        assert forecast[name].attrs["units"] == ds[name].attrs["units"]
    assert np.array_equal(np.isnan(forecast["t2m"].values), np.isnan(ds["t2m"].values))
    assert forecast.attrs == {"title": "test", "lead_steps": 1}


def test_train_command_writes_a_checkpoint_that_predicts_datasets(tmp_path, netcdf):
    path, ds = netcdf
    config = {"data": {"path": str(path), "variables": ["t2m"], "patch_size": 2},
              "model": {"preset": "tiny", "position": "relative"},
              "training": {"steps": 2, "batch_size": 2, "device": "cpu"}}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(config))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0

    predictor = load_model(tmp_path / "out" / "checkpoint.pt")
    meta = predictor.metadata
    train_inputs = ds["t2m"].isel(time=slice(0, 4)).values
    assert meta["normalization"]["mean"]["t2m"] == pytest.approx(np.nanmean(train_inputs))
    assert meta["normalization"]["std"]["t2m"] == pytest.approx(np.nanstd(train_inputs))
    assert meta["tokenizer"]["patch_size"] == [2, 2]
    assert meta["grid"]["periodic"] == [False, True]
    assert predictor.config["in_features"] == 4
    forecast = predictor.predict(ds)
    assert list(forecast.data_vars) == ["t2m"]
    assert forecast["t2m"].shape == ds["t2m"].shape
    assert np.array_equal(np.isnan(forecast["t2m"].values), np.isnan(ds["t2m"].values))
    # a 2-step TINY model stays near the normalised input's scale: forecasts in kelvin
    assert 200 < float(forecast["t2m"].mean()) < 360


def test_predict_errors_name_the_problem(tmp_path, netcdf):
    path, ds = netcdf
    pairs = load_pairs({"path": str(path), "variables": ["t2m"], "patch_size": 2})
    save_checkpoint(tmp_path / "m.pt", _doubling_cnn(4), metadata=pairs.metadata)
    predictor = load_model(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"data lacks the variables \['t2m'\] that the model "
                                         r"was trained on; it has \['z'\]"):
        predictor.predict(ds[["z"]])
    with pytest.raises(TypeError, match=r"data must be an xr.Dataset with variables \['t2m'\], "
                                        r"not DataArray"):
        predictor.predict(ds["t2m"])
    renamed = ds.rename(lat="y")
    with pytest.raises(ValueError, match=r"data lacks the grid dims \['lat'\] that the model "
                                         r"was trained on"):
        predictor.predict(renamed)

    save_checkpoint(tmp_path / "pooled.pt", LocalCNN(4, 4, head="index"),
                    metadata=pairs.metadata)
    with pytest.raises(ValueError, match=r"predict\(\) needs a next-state model"):
        load_model(tmp_path / "pooled.pt").predict(ds)


def test_checkpoint_without_metadata_still_gives_the_model(tmp_path):
    layout = TokenLayout.for_grid((4, 4), patch_size=1, periodic=True)
    torch.manual_seed(0)
    model = GridFormer(dataclasses.replace(TINY, in_features=1, out_features=1))
    x = torch.randn(4, 16, 1)
    fit(model, (x, x), layout=layout, steps=1, batch_size=4, device="cpu",
        checkpoint_path=tmp_path / "c.pt")
    predictor = load_model(tmp_path / "c.pt")
    assert predictor.metadata is None
    model.eval()
    torch.testing.assert_close(predictor.model(x, layout).prediction,
                               model(x, layout).prediction, atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"c\.pt' holds no data metadata \(it was written by "
                                         r"fit\(\) without metadata=\)"):
        predictor.predict(xr.Dataset())


def test_fit_stores_metadata_as_plain_json(tmp_path):
    layout = TokenLayout.for_grid((4, 4), patch_size=1, periodic=True)
    x = torch.randn(4, 16, 1)
    meta = {"format": "gridformer-data-1", "mean": np.float64(1.5), "shape": (4, 4)}
    fit(LocalCNN(1, 1, hidden=2, layers=1), (x, x), layout=layout, steps=1, batch_size=4,
        device="cpu", checkpoint_path=tmp_path / "c.pt", metadata=meta)
    state = load_checkpoint(tmp_path / "c.pt")  # torch.load(..., weights_only=True)
    assert state["metadata"] == {"format": "gridformer-data-1", "mean": 1.5, "shape": [4, 4]}
    assert type(state["metadata"]["mean"]) is float
    with pytest.raises(TypeError, match=r"metadata must be plain JSON data \(dicts with string "
                                        r"keys, lists, strings, numbers, booleans, None\)"):
        save_checkpoint(tmp_path / "bad.pt", LocalCNN(1, 1), metadata={"x": torch.zeros(1)})
    assert json.dumps(state["metadata"])
