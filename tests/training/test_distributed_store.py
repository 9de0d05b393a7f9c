"""`gridformer train` on a token store: 2 torchrun processes == 1 process, same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from gridformer.datasets import write_token_store

from gridformer.training import load_model
from gridformer.training.data import load_pairs

T, LAT, LON = 41, 8, 16  # 40 next-state pairs: an even split over 2 processes


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(3)
    t = 280 + rng.normal(size=(T, LAT, LON)).cumsum(axis=0)
    t[:, :2, :3] = np.nan  # a missing corner: tokens there stay masked
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), t.astype(np.float32))},
                    coords={"time": pd.date_range("2001-01-01", periods=T),
                            "lat": np.linspace(-78.75, 78.75, LAT),
                            "lon": np.arange(LON) * 22.5})
    path = tmp_path_factory.mktemp("store") / "t2m.zarr"
    return write_token_store(ds, path, patch_size=2, stats_time=("2001-01-01", "2001-01-28"))


def _config(tmp_path, store, batch_size: int, val_fraction: float = 0.0):
    config = tmp_path / f"cfg_{batch_size}.json"
    config.write_text(json.dumps({
        "data": {"store": str(store.path), "lead": 1, "val_fraction": val_fraction,
                 "patch_size": 2, "variables": ["t2m"]},
        "model": {"preset": "tiny"},
        "training": {"steps": 3, "batch_size": batch_size, "device": "cpu", "lr": 0.003},
    }))
    return config


def _train(cmd: list[str], out, env_extra=None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    done = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True,
                          timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, store):
    one = _train([sys.executable, "-m", "gridformer", "train",
                  "--config", str(_config(tmp_path, store, 8))], tmp_path / "one")
    two = _train([sys.executable, "-m", "torch.distributed.run", "--standalone",
                  "--nproc_per_node=2", "-m", "gridformer", "train",
                  "--config", str(_config(tmp_path, store, 4))], tmp_path / "two")
    weights_one, weights_two = one["model"], two["model"]
    assert weights_one.keys() == weights_two.keys()
    for name, w in weights_one.items():
        if name.endswith("attn.k.bias"):
            # a key bias shifts every logit of a query alike: softmax ignores it, its true
            # gradient is 0, and Adam turns the round-off left in it into +-lr steps; the
            # predictions below show it changes nothing
            continue
        # DDP averages the two halves' gradients: the same update up to float32 summation order
        torch.testing.assert_close(weights_two[name], w, rtol=1e-5, atol=1e-6)
    inputs = torch.stack([store_pair[0] for store_pair in
                          (load_pairs({"store": str(store.path)}).train[i] for i in range(8))])
    predictions = []
    for run in ("one", "two"):
        model = load_model(tmp_path / run / "checkpoint.pt").model
        with torch.no_grad():
            predictions.append(model(inputs, store.layout).prediction)
    torch.testing.assert_close(predictions[1], predictions[0], rtol=1e-5, atol=1e-5)
    history_one = json.loads((tmp_path / "one" / "history.json").read_text())
    history_two = json.loads((tmp_path / "two" / "history.json").read_text())
    np.testing.assert_allclose(history_two["train_loss"], history_one["train_loss"], rtol=1e-5)
    assert history_one["train_loss"][0] > 0.1  # a real loss, not a degenerate run
    assert one["metadata"]["store"]["settings"]["patch_size"] == [2, 2]


def test_store_pairs_split_by_time_and_refuse_leaks(store):
    pairs = load_pairs({"store": str(store.path), "val_fraction": 0.25})  # stats: steps 0..27
    assert pairs.source["train_pairs"] == 30
    assert pairs.source["val_pairs"] == 10
    x, y = pairs.train[29]
    np.testing.assert_array_equal(x.numpy(), store.read("tokens", 29, 30)[0])
    np.testing.assert_array_equal(y.numpy(), store.read("tokens", 30, 31)[0])
    xv, _ = pairs.val[0]
    np.testing.assert_array_equal(xv.numpy(), store.read("tokens", 30, 31)[0])
    assert pairs.layout.valid.shape == (30, 32)  # one row per training pair: the NaN corner
    assert not bool(pairs.layout.valid[:, 0].any())
    assert pairs.metadata["normalization"]["mean"]["t2m"] == store.meta["statistics"]["t2m"]["mean"]
    with pytest.raises(ValueError, match=r"statistics period .* overlaps the validation steps "
                                         r"\(from step 20, time 2001-01-21"):
        load_pairs({"store": str(store.path), "val_fraction": 0.5})
    with pytest.raises(ValueError, match=r"patch_size: store has \[2, 2\], expected \[4, 4\]"):
        load_pairs({"store": str(store.path), "patch_size": 4})
    with pytest.raises(ValueError, match=r"data keys \['periodic'\] do not apply to a token"):
        load_pairs({"store": str(store.path), "periodic": True})
    with pytest.raises(ValueError, match="exactly one of 'path'"):
        load_pairs({"store": str(store.path), "path": "x.nc"})
