"""GridFormerConfig validation, presets and dict round trip."""

import dataclasses

import pytest

from gridformer.model import SMALL, STENCIL, TINY, GridFormerConfig


def test_presets_are_configs_and_round_trip():
    for preset in (TINY, SMALL, STENCIL):
        assert isinstance(preset, GridFormerConfig)
        assert GridFormerConfig.from_dict(preset.to_dict()) == preset
    assert STENCIL.dim == 1
    assert STENCIL.depth == 1
    assert STENCIL.heads == 1
    assert not STENCIL.content_attention
    assert not STENCIL.residual
    assert not STENCIL.norm
    assert STENCIL.mlp_ratio == 0
    assert STENCIL.position == "relative"


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.dim = 3


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"dim": 10, "heads": 3}, ValueError, r"heads=3 does not divide dim=10"),
        ({"position": "rope"}, ValueError, r"position='rope' is not one of"),
        ({"head": "seg"}, ValueError, r"head='seg' is not one of"),
        ({"pool": "max"}, ValueError, r"pool='max' is not one of"),
        ({"distance_bias": "auto"}, ValueError, r"distance_bias='auto' must be"),
        ({"distance_bias": [1.0]}, TypeError, r"distance_bias=\[1.0\] must be"),
        ({"dropout": 1.0}, ValueError, r"dropout=1.0 must be in"),
        ({"mlp_ratio": -1.0}, ValueError, r"mlp_ratio=-1.0 must be >= 0"),
        ({"in_features": 0}, ValueError, r"in_features=0 must be a positive integer"),
        ({"max_relative_offset": 2.5}, ValueError,
         r"max_relative_offset=2.5 must be a positive integer"),
        ({"mlp_ratio": "4"}, TypeError, r"mlp_ratio='4' must be a number"),
        ({"mlp_ratio": float("nan")}, ValueError, r"mlp_ratio=nan must be >= 0"),
        ({"dropout": None}, TypeError, r"dropout=None must be a number"),
        ({"distance_scale_km": float("inf")}, ValueError, r"distance_scale_km=inf must be > 0"),
        ({"residual": "yes"}, TypeError, r"residual='yes' must be True or False"),
        ({"reference_grid": (4, 0)}, ValueError, r"reference_grid=\(4, 0\)"),
        ({"position": "none", "content_attention": False}, ValueError,
         r"content_attention=False needs a position bias"),
    ],
)
def test_bad_values_name_the_field(change, error, match):
    with pytest.raises(error, match=match):
        dataclasses.replace(TINY, **change)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown GridFormerConfig fields \['width'\]"):
        GridFormerConfig.from_dict({**TINY.to_dict(), "width": 3})


def test_geodesic_without_value_learns_the_bias():
    cfg = dataclasses.replace(TINY, position="geodesic")
    assert cfg.learned_distance_bias
    assert cfg.uses_bias
    fixed = dataclasses.replace(TINY, position="geodesic", distance_bias=1.0)
    assert not fixed.learned_distance_bias
