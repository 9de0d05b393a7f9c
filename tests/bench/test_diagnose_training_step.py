"""The training-step diagnostic runs every variant, and its switches really switch."""

import sys

import torch

from benchmarks.diagnose_training_step import dense_bias_path, diagnose, explicit_attention
from gridformer import GridFormer, GridFormerConfig, TokenLayout


def _count_calls(monkeypatch, owner, name: str) -> list[int]:
    """Replace ``owner.name`` by a wrapper that appends to the returned list per call."""
    calls: list[int] = []
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _model_and_input(position: str):
    """A two-layer GridFormer, its 4 x 4 periodic layout and one sample of tokens."""
    torch.manual_seed(0)
    layout = TokenLayout.for_grid((4, 4), patch_size=1, periodic=True)
    model = GridFormer(GridFormerConfig(in_features=2, out_features=2, dim=16, depth=2,
                                        heads=2, position=position))
    return model, layout, torch.randn(1, 16, 2)


def test_explicit_attention_switch_takes_the_explicit_path_and_is_undone(monkeypatch):
    layers = sys.modules["gridformer.model.layers"]
    fused = layers.attention
    explicit_calls = _count_calls(monkeypatch, sys.modules["gridformer.model.attention"],
                                  "_explicit")
    model, layout, tokens = _model_and_input("none")
    expected = model(tokens, layout).prediction
    assert explicit_calls == []  # no bias: the fused kernel
    with explicit_attention():
        out = model(tokens, layout).prediction
    assert len(explicit_calls) == 2  # one per layer
    assert layers.attention is fused
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_dense_bias_switch_takes_the_reference_path_and_is_undone(monkeypatch):
    table = sys.modules["gridformer.model.table_attention"]
    calls = _count_calls(monkeypatch, table.TableBiasAttention, "apply")
    model, layout, tokens = _model_and_input("relative")
    expected = model(tokens, layout).prediction
    assert len(calls) == 2  # the default on the CPU with gradients: the table, per layer
    with dense_bias_path():
        out = model(tokens, layout).prediction
    assert len(calls) == 2
    assert sys.modules["gridformer.model.gridformer"].TABLE_ATTENTION is True
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_diagnose_times_every_variant():
    result = diagnose(repeats=1)
    assert set(result) == {"encoder", "none", "none, explicit attention",
                           "relative, table frozen", "relative", "relative, dense bias",
                           "encoder + relative-bias mask"}
    assert all(t["min_ms"] > 0 for t in result.values())
