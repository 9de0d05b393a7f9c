"""Seeded gridded tasks behind the experiment suite, as xarray with their ground truth recorded.

Each generator returns an ``xr.Dataset`` whose ``field`` is the input grid (dims ``sample, y,
x``) and whose other variables and attrs hold what was planted, so a test or a reader can check
the truth without re-deriving it:

- :func:`occlusion_task` — binary classes decided by two distant pieces of evidence (the label
  is whether their signs differ), with whole patches of missing cells (NaN) in between:
  random blocks (cloud cover, random patch drop) or vertical stripes (a sensor gap).
- :func:`counting_task` — objects cut into a left and a right half placed in two regions far
  apart; the label is the number of objects whose both halves are present.
- :func:`segmentation_task` — per-cell labels: fronts (the sign of a smooth field) or blobs
  (discs of two classes on a smooth background), seen through noise.

Everything is cut to a patch grid: evidence, halves and occluded blocks fill whole patches of
``patch_size`` cells, so that a :class:`~gridformer.PatchTokenizer` of that patch size turns
each of them into exactly one token (an occluded patch into an invalid token).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import xarray as xr
from gridformer.datasets.synthetic import random_field

__all__ = [
    "OCCLUSION_PATTERNS",
    "SEGMENTATION_KINDS",
    "counting_task",
    "occlusion_task",
    "segmentation_task",
]

OCCLUSION_PATTERNS = ("blocks", "stripes")
SEGMENTATION_KINDS = ("fronts", "blobs")


# ---------------------------------------------------------------- checks
def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        msg = f"{name}={value!r} must be an integer >= {minimum}"
        raise ValueError(msg)
    return int(value)


def _nonnegative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        msg = f"{name}={value!r} must be a number >= 0"
        raise ValueError(msg)
    return float(value)


def _patch_grid(grid: Sequence[int], patch_size: int) -> tuple[int, int]:
    """Patches per dim of a 2-D ``grid`` cut into ``patch_size`` patches (must divide it)."""
    grid = tuple(int(g) for g in np.atleast_1d(grid))
    if len(grid) != 2 or any(g % patch_size or g < patch_size for g in grid):
        msg = (
            f"grid={grid!r} must be two sizes (ny, nx) that patch_size={patch_size} divides, "
            f"e.g. ({4 * patch_size}, {8 * patch_size})"
        )
        raise ValueError(msg)
    return grid[0] // patch_size, grid[1] // patch_size


def _background(n: int, grid: tuple[int, int], sd: float, rng: np.random.Generator
                ) -> np.ndarray:
    """Smooth periodic background ``(n, ny, nx)`` of standard deviation ``sd`` per sample."""
    if sd == 0:
        return np.zeros((n, *grid))
    field = random_field(grid, spectral_slope=-3.0, n_samples=n, seed=int(rng.integers(2**31)))
    return sd * field.values


def _coords(grid: tuple[int, int]) -> dict[str, np.ndarray]:
    return {"y": np.arange(grid[0]), "x": np.arange(grid[1])}


# ---------------------------------------------------------------- occlusion
def _occlusion_mask(rng: np.random.Generator, patches: tuple[int, int], keep: np.ndarray,
                    fraction: float, pattern: str, band: int) -> np.ndarray:
    """Occluded patches ``(py, px)`` bool: ``round(fraction * py * px)`` patches, none in ``keep``.

    ``"blocks"`` draws them at random among the patches outside ``keep``; ``"stripes"`` takes
    whole patch columns between the two evidence bands (``band`` columns wide each side), at
    random, as many as the fraction asks (the last one partly, from the top), so that the gap
    runs across the grid.
    """
    py, px = patches
    n_occluded = round(fraction * py * px)
    mask = np.zeros(patches, dtype=bool)
    if pattern == "blocks":
        free = np.flatnonzero(~keep.ravel())
        mask.ravel()[rng.choice(free, size=min(n_occluded, free.size), replace=False)] = True
        return mask
    columns = rng.permutation(np.arange(band, px - band))
    for col in columns:
        take = min(py, n_occluded - int(mask.sum()))
        if take <= 0:
            break
        mask[:take, col] = True
    return mask


def occlusion_task(
    n_samples: int,
    *,
    grid: Sequence[int] = (32, 32),
    patch_size: int = 4,
    fraction: float = 0.0,
    pattern: str = "blocks",
    evidence_columns: int = 2,
    evidence_amplitude: float = 2.0,
    background_sd: float = 0.5,
    seed: int = 0,
) -> xr.Dataset:
    """Two distant pieces of evidence decide the class; missing patches may lie in between.

    Each sample holds two evidence patches: one in the ``evidence_columns`` leftmost patch
    columns, one in the rightmost ones, each at a random row and filled with
    ``sign * evidence_amplitude`` (``sign`` = +-1 at random) on a smooth background of std
    ``background_sd``. The label is 1 when the two signs differ, 0 when they agree (an XOR: no
    sum of per-side features can tell the classes apart, so a model must bring the two sides
    together). Then ``round(fraction * n_patches)`` whole patches other than the evidence are
    set to NaN (see ``pattern``).

    Parameters
    ----------
    n_samples
        Number of samples (labels are balanced in expectation, each drawn with p = 1/2).
    grid
        ``(ny, nx)`` cells; ``patch_size`` must divide both.
    patch_size
        Cells per patch side; evidence and occlusion fill whole patches.
    fraction
        Share of all patches made missing, in ``[0, 1)``; only patches other than the
        evidence are used, so the evidence is always visible.
    pattern
        ``"blocks"``: random patches (cloud cover; random patch drop as in Naseer et al. 2021);
        ``"stripes"``: whole patch columns between the evidence columns (a sensor gap).
    evidence_columns
        Width (in patches) of the left and right bands where the evidence is placed.
    evidence_amplitude, background_sd
        Value of the evidence cells (times the sign) and std of the smooth background.
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same dataset.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, y, x)`` float64 with NaN at occluded cells; ``occluded`` ``(sample,
        y, x)`` bool; ``label`` ``(sample,)`` int64 in {0, 1}; ``evidence_sign``,
        ``evidence_row``, ``evidence_col`` ``(sample, side)`` (patch indices; side "left",
        "right"); attrs: ``n_classes`` 2, ``fraction``, ``pattern``, ``patch_size``, ``seed``,
        ``min_evidence_distance`` (patch columns between the bands) and a ``description``.
    """
    n = _positive_int("n_samples", n_samples)
    patch = _positive_int("patch_size", patch_size)
    py, px = _patch_grid(grid, patch)
    band = _positive_int("evidence_columns", evidence_columns)
    if 2 * band >= px:
        msg = (f"evidence_columns={band} leaves no patch column between the two evidence bands "
               f"of a grid {px} patches wide; use evidence_columns < {px / 2:g}")
        raise ValueError(msg)
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) \
            or not 0.0 <= fraction < 1.0:
        msg = f"fraction={fraction!r} must be a number in [0, 1) (the share of missing patches)"
        raise ValueError(msg)
    if pattern not in OCCLUSION_PATTERNS:
        msg = f"pattern={pattern!r} is not one of {list(OCCLUSION_PATTERNS)}"
        raise ValueError(msg)
    amplitude = _nonnegative("evidence_amplitude", evidence_amplitude)
    background_sd = _nonnegative("background_sd", background_sd)
    if pattern == "stripes" and round(fraction * py * px) > py * (px - 2 * band):
        msg = (f"fraction={fraction} asks for {round(fraction * py * px)} missing patches but "
               f"stripes between the evidence bands hold at most {py * (px - 2 * band)}; use "
               f"fraction <= {(px - 2 * band) / px:g} or pattern='blocks'")
        raise ValueError(msg)

    rng = np.random.default_rng(seed)
    cells = (py * patch, px * patch)
    field = _background(n, cells, background_sd, rng)  # (S, ny, nx)
    signs = rng.choice(np.array([-1, 1]), size=(n, 2))
    rows = rng.integers(0, py, size=(n, 2))
    cols = np.stack([rng.integers(0, band, size=n), rng.integers(px - band, px, size=n)], -1)
    occluded = np.zeros((n, py, px), dtype=bool)
    for s in range(n):
        keep = np.zeros((py, px), dtype=bool)
        for side in range(2):
            r, c = rows[s, side], cols[s, side]
            field[s, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch] += (
                signs[s, side] * amplitude)
            keep[r, c] = True
        occluded[s] = _occlusion_mask(rng, (py, px), keep, float(fraction), pattern, band)
    cell_mask = occluded.repeat(patch, axis=1).repeat(patch, axis=2)  # (S, ny, nx)
    field[cell_mask] = np.nan
    labels = (signs[:, 0] != signs[:, 1]).astype(np.int64)
    dims = ("sample", "y", "x")
    return xr.Dataset(
        {
            "field": (dims, field),
            "occluded": (dims, cell_mask),
            "label": ("sample", labels),
            "evidence_sign": (("sample", "side"), signs.astype(np.int64)),
            "evidence_row": (("sample", "side"), rows.astype(np.int64)),
            "evidence_col": (("sample", "side"), cols.astype(np.int64)),
        },
        coords={**_coords(cells), "side": ["left", "right"]},
        attrs={
            "task": "occlusion", "n_classes": 2, "fraction": float(fraction),
            "pattern": pattern, "patch_size": patch, "evidence_columns": band,
            "evidence_amplitude": amplitude, "background_sd": background_sd,
            "min_evidence_distance": px - 2 * band + 1, "seed": int(seed),
            "description": "label = 1 if the signs of the left and right evidence patches "
                           "differ, else 0; occluded patches are NaN",
        },
    )


# ---------------------------------------------------------------- counting
def _place(rng: np.random.Generator, py: int, columns: np.ndarray, k: int) -> np.ndarray:
    """``k`` distinct patches ``(k, 2)`` (row, col) with col among ``columns``."""
    slots = rng.choice(py * columns.size, size=k, replace=False)
    return np.stack([slots // columns.size, columns[slots % columns.size]], -1)


def counting_task(
    n_samples: int,
    *,
    patch_grid: Sequence[int] = (4, 16),
    patch_size: int = 4,
    n_types: int = 8,
    n_pairs: int = 3,
    region_columns: int = 4,
    amplitude: float = 1.5,
    background_sd: float = 0.3,
    seed: int = 0,
    pattern_seed: int = 0,
) -> xr.Dataset:
    """Objects split into two halves placed far apart; the label counts the complete objects.

    An object type ``t`` is a fixed random +-``amplitude`` pattern two patches wide (the bank is
    drawn from ``pattern_seed``, so it is the same for every ``seed``); its left half is one
    patch, its right half another. Every sample holds ``n_pairs`` left halves in the
    ``region_columns`` leftmost patch columns and ``n_pairs`` right halves in the rightmost ones,
    at distinct random patches, on a smooth background of std ``background_sd``. The count
    ``c`` is drawn uniformly from ``0 .. n_pairs``: ``c`` types have both halves present, the
    other halves are of types whose partner is absent (all types in a sample are distinct).
    So the number of halves never changes, each side alone says nothing about ``c`` (any side
    is a uniform draw of distinct types), and chance accuracy is ``1 / (n_pairs + 1)``.

    Parameters
    ----------
    n_samples
        Number of samples.
    patch_grid
        ``(rows, columns)`` of patches; the grid is ``patch_grid * patch_size`` cells.
    patch_size
        Cells per patch side (each half fills one patch, so one token).
    n_types
        Object types in the bank (>= ``2 * n_pairs``).
    n_pairs
        Halves per side; the count runs over ``0 .. n_pairs``.
    region_columns
        Width (in patches) of the left and right regions.
    amplitude, background_sd
        Pattern amplitude and std of the smooth background.
    seed, pattern_seed
        Seeds of the samples and of the pattern bank.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, y, x)``; ``label`` ``(sample,)`` int64, the count; per half ``(sample,
        half)``, left halves first: ``half_type``, ``half_row``, ``half_col`` (patch indices),
        ``half_token`` (row-major token index on the patch grid) and ``partner`` (index of the
        matching half, -1 if absent); ``patterns`` ``(type, py_cell, px_cell)``; attrs:
        ``n_classes``, ``min_half_distance`` (patch columns between the regions, the smallest
        distance between any left and any right half), ``patch_size``, ``seed`` and a
        ``description``.
    """
    n = _positive_int("n_samples", n_samples)
    patch = _positive_int("patch_size", patch_size)
    grid = tuple(int(g) for g in np.atleast_1d(patch_grid))
    if len(grid) != 2 or min(grid) < 1:
        msg = f"patch_grid={patch_grid!r} must be two positive sizes (rows, columns)"
        raise ValueError(msg)
    py, px = grid
    pairs = _positive_int("n_pairs", n_pairs)
    types = _positive_int("n_types", n_types)
    if types < 2 * pairs:
        msg = (f"n_types={types} is too few for n_pairs={pairs}: a sample with no complete "
               f"object needs {2 * pairs} distinct types; use n_types >= {2 * pairs}")
        raise ValueError(msg)
    region = _positive_int("region_columns", region_columns)
    if 2 * region >= px or py * region < pairs:
        msg = (f"region_columns={region} must leave a gap between the regions of a grid {px} "
               f"patches wide and hold n_pairs={pairs} halves in {py} rows; use region_columns "
               f"in [{-(-pairs // py)}, {(px - 1) // 2}]")
        raise ValueError(msg)
    amplitude = _nonnegative("amplitude", amplitude)
    background_sd = _nonnegative("background_sd", background_sd)

    bank = amplitude * np.random.default_rng(pattern_seed).choice(
        np.array([-1.0, 1.0]), size=(types, patch, 2 * patch))  # (T, P, 2P)
    rng = np.random.default_rng(seed)
    cells = (py * patch, px * patch)
    field = _background(n, cells, background_sd, rng)  # (S, ny, nx)
    counts = rng.integers(0, pairs + 1, size=n)
    half_type = np.empty((n, 2 * pairs), dtype=np.int64)
    where = np.empty((n, 2 * pairs, 2), dtype=np.int64)
    partner = np.full((n, 2 * pairs), -1, dtype=np.int64)
    left_cols, right_cols = np.arange(region), np.arange(px - region, px)
    for s in range(n):
        c = counts[s]
        chosen = rng.permutation(types)[: 2 * pairs - c]
        left = np.concatenate([chosen[:c], chosen[c:pairs]])
        right = np.concatenate([chosen[:c], chosen[pairs:]])
        half_type[s] = np.concatenate([left, right])
        partner[s, :c] = pairs + np.arange(c)
        partner[s, pairs:pairs + c] = np.arange(c)
        where[s, :pairs] = _place(rng, py, left_cols, pairs)
        where[s, pairs:] = _place(rng, py, right_cols, pairs)
        for h in range(2 * pairs):
            r, col = where[s, h]
            half = bank[half_type[s, h], :, :patch] if h < pairs else bank[half_type[s, h], :,
                                                                            patch:]
            field[s, r * patch:(r + 1) * patch, col * patch:(col + 1) * patch] += half
    dims = ("sample", "y", "x")
    return xr.Dataset(
        {
            "field": (dims, field),
            "label": ("sample", counts.astype(np.int64),
                      {"long_name": "number of complete objects"}),
            "half_type": (("sample", "half"), half_type),
            "half_row": (("sample", "half"), where[..., 0]),
            "half_col": (("sample", "half"), where[..., 1]),
            "half_token": (("sample", "half"), where[..., 0] * px + where[..., 1]),
            "partner": (("sample", "half"), partner),
            "patterns": (("type", "py_cell", "px_cell"), bank),
        },
        coords={**_coords(cells), "half_side": ("half", ["left"] * pairs + ["right"] * pairs)},
        attrs={
            "task": "counting", "n_classes": pairs + 1, "n_pairs": pairs, "n_types": types,
            "patch_size": patch, "region_columns": region,
            "min_half_distance": px - 2 * region + 1, "amplitude": amplitude,
            "background_sd": background_sd, "seed": int(seed), "pattern_seed": int(pattern_seed),
            "description": "label = number of object types whose left half (left region) and "
                           "right half (right region) are both present",
        },
    )


# ---------------------------------------------------------------- segmentation
def _blobs(rng: np.random.Generator, grid: tuple[int, int], n_blobs: int,
           radius: tuple[float, float]) -> np.ndarray:
    """Labels ``(ny, nx)``: 0 background, discs of class 1 or 2 (later discs on top)."""
    yy, xx = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
    labels = np.zeros(grid, dtype=np.int64)
    for _ in range(n_blobs):
        cy, cx = rng.uniform(0, grid[0]), rng.uniform(0, grid[1])
        r = rng.uniform(*radius)
        dy = np.minimum(np.abs(yy - cy), grid[0] - np.abs(yy - cy))  # periodic
        dx = np.minimum(np.abs(xx - cx), grid[1] - np.abs(xx - cx))
        labels[dy**2 + dx**2 <= r**2] = rng.integers(1, 3)
    return labels


def segmentation_task(
    n_samples: int,
    *,
    grid: Sequence[int] = (32, 32),
    kind: str = "fronts",
    noise: float = 0.5,
    spectral_slope: float = -4.0,
    n_blobs: int = 4,
    blob_radius: tuple[float, float] = (3.0, 7.0),
    seed: int = 0,
) -> xr.Dataset:
    """Per-cell labels on a periodic grid, seen through noise.

    ``"fronts"``: ``phi`` is a smooth random field (``random_field`` with a power-law spectrum of
    slope ``spectral_slope``, unit std: -4 gives one or two fronts across the grid); the label
    is ``phi > 0`` (2 classes, the fronts are its zero lines) and the input is
    ``phi + noise * white noise``. ``"blobs"``: ``n_blobs`` discs of radius in ``blob_radius``
    (cells, periodic), each of class 1 or 2, on background 0 (3 classes); the input is ``+1``
    on class 1, ``-1`` on class 2, plus a smooth background of std 0.3 and ``noise * white
    noise``. Near a boundary the noise makes single cells ambiguous: their neighbours decide.

    Returns
    -------
    xr.Dataset
        ``field`` ``(sample, y, x)`` float64, ``label`` ``(sample, y, x)`` int64 in
        ``0 .. n_classes - 1``, ``boundary`` ``(sample, y, x)`` bool (a cell with a differently
        labelled 4-neighbour, periodic); attrs ``kind``, ``n_classes``, ``noise``, ``seed``
        (and ``spectral_slope`` for fronts).
    """
    n = _positive_int("n_samples", n_samples)
    shape = tuple(int(g) for g in np.atleast_1d(grid))
    if len(shape) != 2 or min(shape) < 4:
        msg = f"grid={grid!r} must be two sizes (ny, nx) >= 4"
        raise ValueError(msg)
    if kind not in SEGMENTATION_KINDS:
        msg = f"kind={kind!r} is not one of {list(SEGMENTATION_KINDS)}"
        raise ValueError(msg)
    noise = _nonnegative("noise", noise)
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((n, *shape))
    if kind == "fronts":
        phi = random_field(shape, spectral_slope=spectral_slope, n_samples=n,
                           seed=int(rng.integers(2**31))).values
        labels = (phi > 0).astype(np.int64)
        field = phi + noise * white
        n_classes = 2
        extra = {"spectral_slope": float(spectral_slope)}
    else:
        blobs = _positive_int("n_blobs", n_blobs)
        lo, hi = (float(r) for r in blob_radius)
        if not 0 < lo <= hi:
            msg = f"blob_radius={blob_radius!r} must be (min, max) with 0 < min <= max (cells)"
            raise ValueError(msg)
        labels = np.stack([_blobs(rng, shape, blobs, (lo, hi)) for _ in range(n)])
        signal = np.select([labels == 1, labels == 2], [1.0, -1.0], 0.0)
        field = signal + _background(n, shape, 0.3, rng) + noise * white
        n_classes = 3
        extra = {}
    boundary = np.zeros(labels.shape, dtype=bool)
    for axis in (1, 2):
        for shift in (1, -1):
            boundary |= labels != np.roll(labels, shift, axis=axis)
    dims = ("sample", "y", "x")
    return xr.Dataset(
        {"field": (dims, field), "label": (dims, labels), "boundary": (dims, boundary)},
        coords=_coords(shape),
        attrs={"task": "segmentation", "kind": kind, "n_classes": n_classes, "noise": noise,
               "seed": int(seed), "bc": "periodic", **extra,
               "description": "fronts: label = phi > 0, field = phi + noise; blobs: discs of "
                              "class 1 (+1) and 2 (-1) on a smooth background, plus noise"},
    )
