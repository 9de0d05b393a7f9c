"""The CUDA training A/B's switches: each turns one CUDA-only choice off and restores it."""

import importlib

import torch

from benchmarks.gpu_training_ab import SETTINGS, switched_off

attention_module = importlib.import_module("gridformer.model.attention")
gridformer_module = importlib.import_module("gridformer.model.gridformer")


def test_switches_turn_each_choice_off_and_restore_it():
    meta = torch.empty(1, device="meta").requires_grad_()
    assert attention_module._needs_grad(meta)
    assert gridformer_module._spread_relative_gather("meta")
    with switched_off(SETTINGS["both before"]):
        assert not attention_module._needs_grad(meta)
        assert not gridformer_module._spread_relative_gather("meta")
    with switched_off(SETTINGS["explicit maps"]):
        assert not attention_module._needs_grad(meta)
        assert gridformer_module._spread_relative_gather("meta")
    assert attention_module._needs_grad(meta)
    assert gridformer_module._spread_relative_gather("meta")
