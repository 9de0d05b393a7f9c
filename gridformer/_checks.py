"""Checks on coordinate values shared by the solvers, the datasets and the tokenizer.

NumPy only (no torch, no xarray), so ``gridformer.solvers`` can use it and stay independent of
the model code.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_monotonic"]


def check_monotonic(
    values: np.ndarray, name: str, *, increasing: bool = False, what: str = "coordinate"
) -> int:
    """Check that a 1-D numeric coordinate is strictly monotonic and return its direction.

    Parameters
    ----------
    values
        Coordinate values ``(L,)``; a coordinate of fewer than two values counts as increasing.
    name
        Name of the coordinate, used in the error messages.
    increasing
        Require strictly increasing values (a decreasing coordinate is then an error too).
    what
        How the messages call the coordinate (e.g. ``"u0 coordinate"``).

    Returns
    -------
    int
        ``+1`` for strictly increasing values, ``-1`` for strictly decreasing ones.

    Raises
    ------
    TypeError
        The values are not numeric (e.g. strings or dates).
    ValueError
        The values are not strictly monotonic (repeated, zig-zag or NaN), or decrease when
        ``increasing`` is set. The message gives the first index where the order breaks.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iuf":  # ints, unsigned ints, floats
        msg = f"{what} {name!r} has dtype {values.dtype}; it must be real numbers"
        raise TypeError(msg)
    if values.ndim != 1:
        msg = f"{what} {name!r} has shape {values.shape}; it must be 1-D"
        raise ValueError(msg)
    if values.size < 2:
        return 1
    diff = np.diff(values.astype(np.float64))  # (L - 1,)
    direction = 1 if diff[0] > 0 else -1
    broken = ~(diff * direction > 0)  # NaN steps count as breaks
    if broken.any():
        i = int(np.argmax(broken))
        msg = (
            f"{what} {name!r} is not strictly monotonic (first break at index {i + 1}: "
            f"{values[i]} -> {values[i + 1]}); sort it first, e.g. data.sortby({name!r})"
        )
        raise ValueError(msg)
    if increasing and direction < 0:
        msg = (
            f"{what} {name!r} must increase, but it decreases ({values[0]} -> {values[1]} ...); "
            f"reverse it first, e.g. data.isel({name}=slice(None, None, -1))"
        )
        raise ValueError(msg)
    return direction
