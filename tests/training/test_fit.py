"""fit: overfitting, bitwise resume, history, errors."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gridformer.model import FNO, TINY, GridFormer, LocalCNN
from gridformer.tokenize import TokenLayout
from gridformer.training import (
    History,
    NonFiniteLossError,
    evaluate,
    fit,
    load_checkpoint,
    load_model,
    mse,
)

LAYOUT = TokenLayout.for_grid((4, 4), patch_size=1, periodic=True)


def heat_data(n=8, seed=0):
    """Inputs u (n, 16, 1) and targets one explicit heat step later (r = 0.2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, 4, generator=g)
    lap = x.roll(1, 1) + x.roll(-1, 1) + x.roll(1, 2) + x.roll(-1, 2) - 4 * x
    return x.reshape(n, 16, 1), (x + 0.2 * lap).reshape(n, 16, 1)


def tiny_model(**change):
    torch.manual_seed(0)
    return GridFormer(dataclasses.replace(TINY, **{"in_features": 1, "out_features": 1,
                                                   **change}))


def test_tiny_model_overfits_tiny_dataset():
    history = fit(tiny_model(), heat_data(), layout=LAYOUT, steps=200, lr=1e-2, batch_size=8,
                  weight_decay=0.0, device="cpu")
    ratio = history.train_loss[0] / history.train_loss[-1]
    assert ratio > 100, f"loss fell only {ratio:.1f}x"


def test_history_records_steps_lr_epochs_and_validation():
    data = heat_data(10)
    history = fit(tiny_model(), data, layout=LAYOUT, epochs=2, batch_size=4, lr=1e-3,
                  val_data=heat_data(3, seed=1), warmup_steps=2, device="cpu")
    assert isinstance(history, History)
    assert history.step == list(range(6))  # ceil(10 / 4) = 3 steps per epoch
    assert history.epoch == [0, 0, 0, 1, 1, 1]
    assert len(history.epoch_loss) == 2
    assert history.val_step == [2, 5]
    assert history.lr[0] == pytest.approx(1e-3 / 3)
    assert history.lr[2] == pytest.approx(1e-3)
    assert history.lr[-1] < history.lr[2]
    assert all(math.isfinite(v) for v in history.val_loss)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_resume_is_bitwise_identical_to_straight_run(tmp_path):
    data = heat_data(10)
    kw = {"layout": LAYOUT, "steps": 9, "batch_size": 4, "lr": 3e-3, "device": "cpu", "seed": 7}
    straight = tiny_model(dropout=0.1)  # dropout: the RNG state must be restored too
    h1 = fit(straight, data, checkpoint_path=tmp_path / "ckpt_{step}.pt", checkpoint_every=4,
             **kw)
    assert (tmp_path / "ckpt_4.pt").exists()
    assert (tmp_path / "ckpt_9.pt").exists()

    resumed = tiny_model(dropout=0.1)
    h2 = fit(resumed, data, resume_from=tmp_path / "ckpt_4.pt", **kw)
    for a, b in zip(_params(straight), _params(resumed), strict=True):
        assert torch.equal(a, b)
    assert h1.train_loss == h2.train_loss
    assert h1.lr == h2.lr


@pytest.mark.parametrize("batch_size", [4, 3])  # 4: one batch holds the whole (shuffled) set
def test_per_sample_valid_rows_follow_the_shuffled_batch(batch_size):
    """With one ``layout.valid`` row per sample, a batch is masked by its own rows only."""
    x, y = heat_data(4)
    valid = torch.ones(4, 16, dtype=torch.bool)
    valid[torch.arange(4), torch.tensor([0, 5, 10, 15])] = False  # one invalid token each
    layout = dataclasses.replace(LAYOUT, valid=valid)
    seed = 1
    index = torch.randperm(4, generator=torch.Generator().manual_seed(seed))[:batch_size]
    model = tiny_model()
    with torch.no_grad():
        expected = mse(model(x[index], dataclasses.replace(LAYOUT, valid=valid[index]))
                       .prediction, y[index], valid[index])
    history = fit(model, (x, y), layout=layout, steps=1, batch_size=batch_size, lr=1e-3,
                  device="cpu", seed=seed, grad_clip=None)
    assert history.train_loss[0] == pytest.approx(float(expected), rel=1e-6)
    with torch.no_grad():  # evaluate: one batch of all 4 samples, each masked by its own row
        whole = mse(model.eval()(x, dataclasses.replace(LAYOUT, valid=valid)).prediction, y,
                    valid)
    assert evaluate(model, (x, y), layout=layout, batch_size=4, device="cpu") == pytest.approx(
        float(whole), rel=1e-6)


def test_checkpoint_contents(tmp_path):
    model = tiny_model()
    fit(model, heat_data(), layout=LAYOUT, steps=2, batch_size=4, device="cpu", seed=3,
        checkpoint_path=tmp_path / "c.pt")
    state = load_checkpoint(tmp_path / "c.pt", tiny_model())
    assert state["step"] == 2
    assert state["seed"] == 3
    assert state["config"] == model.config.to_dict()
    assert set(state["versions"]) == {"gridformer", "torch", "python"}
    assert len(state["history"]["train_loss"]) == 2
    assert not list(tmp_path.glob(".c.pt*"))  # no temporary file left behind


def test_incompatible_checkpoint_is_a_clear_error(tmp_path):
    fit(tiny_model(), heat_data(), layout=LAYOUT, steps=1, batch_size=4, device="cpu",
        checkpoint_path=tmp_path / "c.pt")
    other = GridFormer(dataclasses.replace(TINY, in_features=1, out_features=1, dim=8))
    with pytest.raises(ValueError, match=r"incompatible config: dim=16 \(checkpoint\) vs 8 "
                                         r"\(model\)"):
        load_checkpoint(tmp_path / "c.pt", other)
    with pytest.raises(ValueError, match=r"c\.pt' was written for an incompatible config: "
                                         r"dim=16 \(checkpoint\) vs 8 \(model\)"):
        fit(other, heat_data(), layout=LAYOUT, steps=2, resume_from=tmp_path / "c.pt",
            device="cpu")


def test_unreadable_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint '.*nope\.pt' does not exist"):
        load_model(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    for load in (load_model, load_checkpoint):
        with pytest.raises(ValueError, match=r"garbage\.pt' is not a readable gridformer "
                                             r"checkpoint .* truncated"):
            load(garbage)
    fit(tiny_model(), heat_data(), layout=LAYOUT, steps=1, batch_size=4, device="cpu",
        checkpoint_path=tmp_path / "c.pt")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes((tmp_path / "c.pt").read_bytes()[:500])
    with pytest.raises(ValueError, match=r"cut\.pt' is not a readable gridformer checkpoint"):
        load_checkpoint(truncated, tiny_model())
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ValueError, match=r"foreign\.pt' is not a gridformer checkpoint"):
        load_model(foreign)


def test_non_finite_loss_stops_with_step_and_batch():
    x, y = heat_data(8)
    y[5, 3, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 0 \(epoch 0, batch 0"):
        fit(tiny_model(), (x, y), layout=LAYOUT, steps=3, batch_size=8, device="cpu")
    with pytest.raises(ValueError, match=r"at step \d+ \(epoch 0, batch 1"):
        fit(tiny_model(), (x, y), layout=LAYOUT, steps=10, batch_size=2, device="cpu",
            seed=_seed_with_sample_in_batch(5, batch=1))


def _seed_with_sample_in_batch(sample, batch, n=8, batch_size=2):
    """A seed whose epoch-0 permutation puts ``sample`` in batch ``batch``."""
    for seed in range(100):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
        if sample in perm[batch * batch_size:(batch + 1) * batch_size]:
            return seed
    raise AssertionError


def test_head_not_fitting_target_shape():
    x, _ = heat_data(4)
    with pytest.raises(ValueError, match=r"prediction shape \(2, 16, 1\) does not fit target "
                                         r"shape \(2, 3\); check the head"):
        fit(tiny_model(), (x, torch.zeros(4, 3)), layout=LAYOUT, steps=1, batch_size=2,
            device="cpu")


def test_classification_with_cross_entropy():
    x, _ = heat_data(8)
    labels = (x.mean((1, 2)) > 0).long()
    model = tiny_model(head="class", out_features=2, pool="cls")
    with torch.no_grad():
        first = torch.nn.functional.cross_entropy(model(x, LAYOUT).prediction, labels)
    history = fit(model, (x, labels), layout=LAYOUT, steps=30, batch_size=8, lr=1e-2,
                  loss="cross_entropy", device="cpu")
    assert history.train_loss[0] == pytest.approx(float(first), rel=1e-6)  # the whole set
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, r"pass exactly one of steps= or epochs="),
        ({"steps": 2, "epochs": 1}, ValueError, r"pass exactly one of steps= or epochs="),
        ({"steps": 2, "batch_size": 0}, ValueError, r"batch_size=0 must be an integer >= 1"),
        ({"steps": 0}, ValueError, r"steps=0 must be an integer >= 1"),
        ({"epochs": -1}, ValueError, r"epochs=-1 must be an integer >= 1"),
        ({"steps": 2.5}, ValueError, r"steps=2\.5 must be an integer >= 1"),
        ({"steps": 2, "lr": 0.0}, ValueError, r"lr=0\.0 must be a positive finite number"),
        ({"steps": 2, "lr": float("nan")}, ValueError, r"lr=nan must be a positive finite"),
        ({"steps": 2, "device": "tpu"}, ValueError,
         r"device='tpu' is not a torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"steps": 2, "loss": "mae"}, ValueError, r"loss='mae' is not one of"),
        ({"steps": 2, "loss": "lat_weighted_mse"}, ValueError, r"needs a geographic"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fit(tiny_model(), heat_data(4), layout=LAYOUT, **{"device": "cpu", **kwargs})


def test_train_data_type_error():
    with pytest.raises(TypeError, match=r"train_data must be a torch Dataset"):
        fit(tiny_model(), [1, 2, 3], layout=LAYOUT, steps=1, device="cpu")


def test_lat_weighted_mse_on_geographic_layout():
    layout = TokenLayout.for_grid((4, 8), patch_size=2, dims=("lat", "lon"))
    x = torch.randn(4, layout.n_tokens, 4)
    model = GridFormer(dataclasses.replace(TINY, in_features=4, out_features=4,
                                           position="geodesic"))
    with torch.no_grad():
        error = (model(x, layout).prediction - x).square().numpy()  # (4, N, 4)
    lat = layout.centers()["lat"]  # (N,) degrees
    w = np.cos(np.deg2rad(lat)) / np.cos(np.deg2rad(lat)).mean()
    history = fit(model, (x, x), layout=layout, steps=2, batch_size=4,
                  loss="lat_weighted_mse", device="cpu")
    assert history.train_loss[0] == pytest.approx(float((error * w[:, None]).mean()), rel=1e-5)


@pytest.mark.parametrize("kind", ["gridformer", "local_cnn"])
def test_load_model_rebuilds_the_trained_model(tmp_path, kind):
    model = tiny_model() if kind == "gridformer" else LocalCNN(1, 1, hidden=4, layers=2)
    x, y = heat_data(4)
    fit(model, (x, y), layout=LAYOUT, steps=2, batch_size=2, device="cpu",
        checkpoint_path=tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt")
    model.eval()
    torch.testing.assert_close(again.model(x, LAYOUT).prediction, model(x, LAYOUT).prediction,
                               atol=0, rtol=0)


def _model(kind):
    torch.manual_seed(0)
    if kind == "gridformer":
        return tiny_model()
    if kind == "local_cnn":
        return LocalCNN(1, 1, hidden=4, layers=2)
    return FNO(1, 1, width=4, modes=2, layers=1)


@pytest.mark.parametrize("kind", ["gridformer", "local_cnn", "fno"])
def test_float64_tokens_train_a_float32_model_exactly_like_float32_tokens(kind):
    """Tokens of float64 data (as the tokenizer keeps them) go through the same batch function:
    the model casts inputs, targets are compared in float32, so the run is bit for bit that of
    float32 tokens."""
    x, y = heat_data(8)
    val_x, val_y = heat_data(4, seed=1)
    runs = []
    for dtype in (torch.float32, torch.float64):
        history = fit(_model(kind), TensorDataset(x.to(dtype), y.to(dtype)), layout=LAYOUT,
                      steps=4, batch_size=4, lr=1e-2, device="cpu",
                      val_data=TensorDataset(val_x.to(dtype), val_y.to(dtype)))
        runs.append(history)
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_loss == runs[1].val_loss
    assert runs[0].train_loss[-1] < runs[0].train_loss[0]
