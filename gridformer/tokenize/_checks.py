"""Argument checks shared by the tokenizer and the layout; errors name the value and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gridformer._checks import check_monotonic
from gridformer.tokenize.geometry import contiguous_lon, unwrap_lon

__all__ = [
    "check_patch_entries",
    "normalize_patch_size",
    "normalize_periodic",
    "padding_for",
    "spatial_coordinate",
]

PAD_MODES = ("end", "center")


def check_patch_entries(patch_size: int | Sequence[int]) -> None:
    """Check what can be checked without the data: ints (not bools), each >= 1.

    Raises
    ------
    TypeError
        ``patch_size`` is not an int or a sequence of ints.
    ValueError
        An entry is < 1.
    """
    def is_int(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)

    entries = (
        [patch_size]
        if is_int(patch_size)
        else list(patch_size)
        if isinstance(patch_size, Sequence) and not isinstance(patch_size, str)
        else None
    )
    if entries is None or not entries or not all(is_int(p) for p in entries):
        msg = f"patch_size={patch_size!r} must be an int or a tuple of ints, one per spatial dim"
        raise TypeError(msg)
    if min(entries) < 1:
        msg = f"patch_size={patch_size!r} must be positive (cells per patch, >= 1)"
        raise ValueError(msg)


def normalize_patch_size(
    patch_size: int | Sequence[int], dims: Sequence[str], sizes: Mapping[str, int]
) -> tuple[int, ...]:
    """Return one positive patch size per dim, each no larger than the grid along that dim."""
    check_patch_entries(patch_size)
    if isinstance(patch_size, int | np.integer):
        patch = (int(patch_size),) * len(dims)
    else:
        if len(patch_size) != len(dims):
            msg = (
                f"patch_size={tuple(patch_size)!r} has {len(patch_size)} entries but there are "
                f"{len(dims)} spatial dims {tuple(dims)!r}"
            )
            raise ValueError(msg)
        patch = tuple(int(p) for p in patch_size)
    for dim, p in zip(dims, patch, strict=True):
        if p < 1:
            msg = f"patch_size={patch!r} must be positive (got {p} for dim {dim!r})"
            raise ValueError(msg)
        if p > sizes[dim]:
            msg = (
                f"patch_size={patch!r} is larger than the grid: {p} > {sizes[dim]} cells along "
                f"dim {dim!r}; use a patch size <= {sizes[dim]}"
            )
            raise ValueError(msg)
    return patch


def normalize_periodic(
    periodic: bool | Sequence[bool] | Mapping[str, bool], dims: Sequence[str]
) -> tuple[bool, ...]:
    """Return one bool per dim from a bool, a sequence, or a ``{dim: bool}`` mapping."""
    if isinstance(periodic, bool | np.bool_):
        return (bool(periodic),) * len(dims)
    if isinstance(periodic, Mapping):
        unknown = sorted(set(periodic) - set(dims))
        if unknown:
            msg = f"periodic names unknown dims {unknown}; spatial dims are {tuple(dims)!r}"
            raise ValueError(msg)
        return tuple(bool(periodic.get(d, False)) for d in dims)
    values = tuple(periodic)
    if len(values) != len(dims):
        msg = f"periodic={values!r} must have one entry per spatial dim {tuple(dims)!r}"
        raise ValueError(msg)
    return tuple(bool(v) for v in values)


def padding_for(size: int, patch: int, mode: str = "end") -> tuple[int, int]:
    """``(before, after)`` cells to pad ``size`` up to a multiple of ``patch``."""
    if mode not in PAD_MODES:
        msg = f"pad={mode!r} is not one of {PAD_MODES}"
        raise ValueError(msg)
    total = (-size) % patch
    before = total // 2 if mode == "center" else 0
    return (before, total - before)


def spatial_coordinate(dim: str, values: np.ndarray, *, longitude: bool = False) -> np.ndarray:
    """A spatial coordinate as ``(L,)`` float64, checked: numeric and strictly monotonic.

    With ``longitude`` (the east-west dim of a lat/lon grid) the values are first unwrapped
    (:func:`~gridformer.tokenize.geometry.unwrap_lon`), so a regional grid stored as one run
    across the 0° or 180° meridian (``[350, 355, 0, 5]``) is accepted as ``[350, 355, 360, 365]``.
    A longitude axis sorted by value across the meridian (``[0.5, 325.5, ..., 355.5]``) is not
    one run: its first and second cells are far apart, so it is refused with the roll that fixes
    it.

    Raises
    ------
    TypeError
        Non-numeric values.
    ValueError
        Not strictly monotonic (after unwrapping, for longitudes).
    """
    values = np.asarray(values)
    if not longitude:
        check_monotonic(values, dim)
        return values.astype(np.float64)
    check_monotonic(values[:0], dim)  # dtype check only
    unwrapped = unwrap_lon(values)
    try:
        check_monotonic(unwrapped, dim)
    except ValueError:
        order, run = contiguous_lon(values)
        shift = int(order[0])
        if values.size > 2 and np.array_equal(order, np.roll(np.arange(values.size), -shift)):
            msg = (
                f"longitude {dim!r} is not one continuous run: it jumps from {values[shift - 1]} "
                f"to {values[shift]} (index {shift - 1} -> {shift}), so neighbouring cells would "
                f"be put in patches far apart. A regional grid across the 0° or 180° meridian must "
                f"run eastward without a jump (here {run[0]:g} ... {run[-1]:g}); reorder it, e.g. "
                f"data.roll({dim}={-shift}, roll_coords=True), or open the file with "
                f"gridformer.datasets.open_dataset, which does this"
            )
            raise ValueError(msg) from None
        check_monotonic(values, dim)  # neither a run nor sorted: the usual message
        raise
    return unwrapped
