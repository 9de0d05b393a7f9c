"""Fused CPU kernels (numba): ghost fill, update, saving and blow-up checks, many steps per call.

One call advances every sample by ``n`` steps without returning to Python: per step it fills
the ghost cells of the current buffers (periodic, Dirichlet, Neumann; the same values as
:class:`~gridformer.solvers.boundary.GhostFiller`), computes the update row by row, copies the
state into the output frames at every ``save_every``-th step and looks for NaN/inf at saves and
every ``check_every`` steps. Two drivers share the row code:

* :func:`run_samples` -- ``prange`` over samples, each running all its steps on its own
  (no synchronisation between threads; a sample's buffers stay in its core's cache);
* :func:`run_rows` -- one step at a time, ``prange`` over the rows of all samples (for one or
  a few large grids, where samples alone cannot keep the threads busy).

Buffers are ``(S, Y + 2 gy, X + 2 gx)`` float64, passed as 3-tuples of time levels ``levels``:
``(cur, nxt, nxt)`` for two-level schemes, ``(prev, cur, nxt)`` for leapfrog. After ``t`` steps
the roles have rotated by ``t`` (see :func:`level_roles`). Updates do the same floating-point
operations in the same order as the one-step kernels of :mod:`.kernels`, so results agree bit for
bit (sums of absent stencil points add exact zeros).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from gridformer.solvers.kernels import _flux  # the Burgers face flux (Godunov / upwind), one copy
from numba import njit, prange

if TYPE_CHECKING:  # pragma: no cover
    from gridformer.solvers.boundary import BoundarySpec
    from gridformer.solvers.stencil import Stencil

__all__ = ["BURGERS", "LINEAR", "REACTION", "FusedSpec", "ghosts_for", "level_roles",
           "make_spec", "run_rows", "run_samples", "stencil_layout"]

# what a step computes (FusedSpec.kind)
LINEAR, BURGERS, REACTION = 0, 1, 2
# stencil layouts (FusedSpec.mode_u / mode_v); dense weights are the 3 x 3 box in row-major
# order (dy, dx) = (-1, -1), (-1, 0), ..., (1, 1); LINE uses the middle row only
LINE, CROSS, BOX, GENERIC = 0, 1, 2, 3
# boundary kinds (FusedSpec.bc_kind), per axis (y, x)
PERIODIC, DIRICHLET, NEUMANN = 0, 1, 2


class FusedSpec(NamedTuple):
    """Everything a fused run needs besides the buffers (numba types it once: fixed dtypes).

    Stencils come twice, for fields ``u`` and ``v`` (Gray-Scott; ``v`` repeats ``u`` otherwise):
    ``mode`` (LINE, CROSS, BOX: dense 3 x 3 weights ``w`` (9,); GENERIC: ``w`` (K,) at offsets
    ``dys``, ``dxs`` (K,) int64, summed in that order).
    """

    kind: int
    n_levels: int  # 2 (ping-pong) or 3 (leapfrog)
    n_fields: int  # 1 or 2 (Gray-Scott)
    gy: int
    gx: int
    bc_kind: np.ndarray  # (2,) int64, (y, x)
    bc_value: np.ndarray  # (2, 2) float64, (axis, low/high) Dirichlet wall values
    mode_u: int
    w_u: np.ndarray
    dys_u: np.ndarray
    dxs_u: np.ndarray
    mode_v: int
    w_v: np.ndarray
    dys_v: np.ndarray
    dxs_v: np.ndarray
    beta: float  # weight of the previous level (leapfrog -1; 0 = none)
    dt: float
    hy: float
    hx: float
    viscosity: float
    code: int  # Burgers flux (0 Godunov, 1 upwind) or reaction (0 Fisher, 1 Allen, 2 Gray-Scott)
    p0: float
    p1: float
    save_every: int
    check_every: int


def level_roles(n_levels: int, t: int) -> tuple[int, int, int]:
    """Indices ``(cur, nxt, prev)`` into ``levels`` at local step ``t`` (also used by numba)."""
    return ((t + n_levels - 2) % n_levels, (t + n_levels - 1) % n_levels,
            (t + 2 * n_levels - 3) % n_levels)


_roles = njit(inline="always")(level_roles)


# ------------------------------------------------------------------------------ ghost cells
@njit(inline="always")
def _fill_sample(buf, s, gy, gx, bc_kind, bc_value):  # pragma: no cover - jit
    """Fill every ghost cell of sample ``s``: x on the interior rows, then y on whole rows."""
    _, yp, xp = buf.shape
    ny = yp - 2 * gy
    nx = xp - 2 * gx
    if gx > 0:
        kind = bc_kind[1]
        low = 2.0 * bc_value[1, 0]
        high = 2.0 * bc_value[1, 1]
        for y in range(gy, gy + ny):
            row = buf[s, y]
            if kind == PERIODIC:
                for j in range(gx):
                    row[j] = row[nx + j]
                    row[gx + nx + j] = row[gx + j]
            else:
                for j in range(gx):
                    lo = row[gx + j]
                    hi = row[gx + nx - 1 - j]
                    if kind == DIRICHLET:
                        lo = -lo + low
                        hi = -hi + high
                    row[gx - 1 - j] = lo
                    row[gx + nx + j] = hi
    if gy > 0:
        kind = bc_kind[0]
        low = 2.0 * bc_value[0, 0]
        high = 2.0 * bc_value[0, 1]
        for j in range(gy):
            if kind == PERIODIC:
                src_lo, src_hi = ny + j, gy + j
            else:
                src_lo, src_hi = gy + j, gy + ny - 1 - j
            dst_lo = j if kind == PERIODIC else gy - 1 - j
            dst_hi = gy + ny + j
            for x in range(xp):
                lo = buf[s, src_lo, x]
                hi = buf[s, src_hi, x]
                if kind == DIRICHLET:
                    lo = -lo + low
                    hi = -hi + high
                buf[s, dst_lo, x] = lo
                buf[s, dst_hi, x] = hi


# ------------------------------------------------------------------------------- row updates
@njit(inline="always")
def _stencil_row(src, dst, prev, s, y, mode, w, dys, dxs, gx, nx, beta):  # pragma: no cover
    """Interior of row ``y`` of ``dst``: ``beta * prev + sum_k w_k src[shift_k]`` (in k order).

    Each layout gets its own loop over whole-row slices, which LLVM vectorises; for the LINE and
    CROSS layouts (all the built-in equations but the nine-point ones) whether the ``beta * prev``
    term is there is decided outside the loop (a load under a condition inside it kept the
    loop scalar: 2.8x slower, measured on heat 256^2).
    """
    out = dst[s, y, gx:gx + nx]  # (X,)
    old = prev[s, y, gx:gx + nx]
    with_prev = beta != 0.0
    if mode == GENERIC:
        if with_prev:
            for i in range(nx):
                out[i] = beta * old[i]
        else:
            out[:] = 0.0
        for k in range(w.shape[0]):
            row = src[s, y + dys[k], gx + dxs[k]:gx + dxs[k] + nx]
            wk = w[k]
            for i in range(nx):
                out[i] += wk * row[i]
    elif mode == LINE:
        _line_row(src, out, old, s, y, w, gx, nx, beta, with_prev)
    elif mode == CROSS:
        _cross_row(src, out, old, s, y, w, gx, nx, beta, with_prev)
    else:
        _box_row(src, out, old, s, y, w, gx, nx, beta, with_prev)


@njit(inline="always")
def _line_row(src, out, old, s, y, w, gx, nx, beta, with_prev):  # pragma: no cover - jit
    """1-D three-point row (see :func:`_stencil_row`)."""
    left = src[s, y, gx - 1:gx - 1 + nx]
    centre = src[s, y, gx:gx + nx]
    right = src[s, y, gx + 1:gx + 1 + nx]
    w3, w4, w5 = w[3], w[4], w[5]
    if with_prev:
        for i in range(nx):
            acc = beta * old[i]
            acc += w3 * left[i]
            acc += w4 * centre[i]
            acc += w5 * right[i]
            out[i] = acc
    else:
        for i in range(nx):
            acc = 0.0
            acc += w3 * left[i]
            acc += w4 * centre[i]
            acc += w5 * right[i]
            out[i] = acc


@njit(inline="always")
def _cross_row(src, out, old, s, y, w, gx, nx, beta, with_prev):  # pragma: no cover - jit
    """2-D five-point row (see :func:`_stencil_row`)."""
    left = src[s, y, gx - 1:gx - 1 + nx]
    centre = src[s, y, gx:gx + nx]
    right = src[s, y, gx + 1:gx + 1 + nx]
    up = src[s, y - 1, gx:gx + nx]
    down = src[s, y + 1, gx:gx + nx]
    w1, w3, w4, w5, w7 = w[1], w[3], w[4], w[5], w[7]
    if with_prev:
        for i in range(nx):
            acc = beta * old[i]
            acc += w1 * up[i]
            acc += w3 * left[i]
            acc += w4 * centre[i]
            acc += w5 * right[i]
            acc += w7 * down[i]
            out[i] = acc
    else:
        for i in range(nx):
            acc = 0.0
            acc += w1 * up[i]
            acc += w3 * left[i]
            acc += w4 * centre[i]
            acc += w5 * right[i]
            acc += w7 * down[i]
            out[i] = acc


@njit(inline="always")
def _box_row(src, out, old, s, y, w, gx, nx, beta, with_prev):  # pragma: no cover - jit
    """2-D nine-point row (see :func:`_stencil_row`)."""
    up_left = src[s, y - 1, gx - 1:gx - 1 + nx]
    up = src[s, y - 1, gx:gx + nx]
    up_right = src[s, y - 1, gx + 1:gx + 1 + nx]
    left = src[s, y, gx - 1:gx - 1 + nx]
    centre = src[s, y, gx:gx + nx]
    right = src[s, y, gx + 1:gx + 1 + nx]
    down_left = src[s, y + 1, gx - 1:gx - 1 + nx]
    down = src[s, y + 1, gx:gx + nx]
    down_right = src[s, y + 1, gx + 1:gx + 1 + nx]
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
    for i in range(nx):
        acc = beta * old[i] if with_prev else 0.0
        acc += w0 * up_left[i]
        acc += w1 * up[i]
        acc += w2 * up_right[i]
        acc += w3 * left[i]
        acc += w4 * centre[i]
        acc += w5 * right[i]
        acc += w6 * down_left[i]
        acc += w7 * down[i]
        acc += w8 * down_right[i]
        out[i] = acc


@njit(inline="always")
def _burgers_row(src, dst, s, y, sp, nx):  # pragma: no cover - jit
    """Row ``y`` of one forward-Euler Burgers step (the formula of ``kernels.burgers_step``)."""
    gx = sp.gx
    cx = sp.dt / sp.hx
    dxx = sp.viscosity * sp.dt / (sp.hx * sp.hx)
    cy = sp.dt / sp.hy
    dyy = sp.viscosity * sp.dt / (sp.hy * sp.hy)
    kind = sp.code
    two_d = sp.gy > 0
    out = dst[s, y, gx:gx + nx]
    centre = src[s, y, gx:gx + nx]
    west = src[s, y, gx - 1:gx - 1 + nx]
    east = src[s, y, gx + 1:gx + 1 + nx]
    south = src[s, y - 1 if two_d else y, gx:gx + nx]
    north = src[s, y + 1 if two_d else y, gx:gx + nx]
    for i in range(nx):
        u = centre[i]
        du = -cx * (_flux(u, east[i], kind) - _flux(west[i], u, kind))
        du += dxx * (east[i] - 2.0 * u + west[i])
        if two_d:
            du -= cy * (_flux(u, north[i], kind) - _flux(south[i], u, kind))
            du += dyy * (north[i] - 2.0 * u + south[i])
        out[i] = u + du


@njit(inline="always")
def _react_row(u, v, u_out, v_out, s, y, sp, nx):  # pragma: no cover - jit
    """Add ``dt * R(u, v)`` to row ``y`` of the outputs (the formulas of ``kernels.react_step``)."""
    gx = sp.gx
    dt, p0, p1 = sp.dt, sp.p0, sp.p1
    a_row = u[s, y, gx:gx + nx]
    b_row = v[s, y, gx:gx + nx]
    out_u = u_out[s, y, gx:gx + nx]
    out_v = v_out[s, y, gx:gx + nx]
    if sp.code == 0:
        for i in range(nx):
            a = a_row[i]
            out_u[i] += dt * p0 * a * (1.0 - a)
    elif sp.code == 1:
        for i in range(nx):
            a = a_row[i]
            out_u[i] += dt * p0 * (a - a * a * a)
    else:
        for i in range(nx):
            a = a_row[i]
            b = b_row[i]
            uvv = a * b * b
            out_u[i] += dt * (p0 * (1.0 - a) - uvv)
            out_v[i] += dt * (uvv - (p0 + p1) * b)


@njit(inline="always")
def _update_row(u_lv, v_lv, sp, t, s, y, nx):  # pragma: no cover - jit
    """Row ``y`` of sample ``s`` at local step ``t``: write level ``nxt`` from ``cur``."""
    cur, nxt, prev = _roles(sp.n_levels, t)
    if sp.kind == BURGERS:
        _burgers_row(u_lv[cur], u_lv[nxt], s, y, sp, nx)
        return
    _stencil_row(u_lv[cur], u_lv[nxt], u_lv[prev], s, y, sp.mode_u, sp.w_u, sp.dys_u,
                 sp.dxs_u, sp.gx, nx, sp.beta)
    if sp.kind == REACTION:
        if sp.n_fields == 2:
            _stencil_row(v_lv[cur], v_lv[nxt], v_lv[prev], s, y, sp.mode_v, sp.w_v, sp.dys_v,
                         sp.dxs_v, sp.gx, nx, 0.0)
        _react_row(u_lv[cur], v_lv[cur], u_lv[nxt], v_lv[nxt], s, y, sp, nx)


@njit(inline="always")
def _fill_levels(u_lv, v_lv, sp, t, s):  # pragma: no cover - jit
    """Ghost cells of the current level of every field of sample ``s``."""
    cur = _roles(sp.n_levels, t)[0]
    _fill_sample(u_lv[cur], s, sp.gy, sp.gx, sp.bc_kind, sp.bc_value)
    if sp.n_fields == 2:
        _fill_sample(v_lv[cur], s, sp.gy, sp.gx, sp.bc_kind, sp.bc_value)


@njit(inline="always")
def _keep_row(buf, frames, frame, s, y, gy, gx, nx, save):  # pragma: no cover - jit
    """Copy interior row ``y`` into ``frames[frame, s]`` when ``save``; count non-finite cells."""
    row = buf[s, gy + y, gx:gx + nx]
    bad = 0
    if save:
        out = frames[frame, s, y]
        for i in range(nx):
            value = row[i]
            out[i] = value
            bad += value - value != 0.0  # NaN for NaN and inf
    else:
        for i in range(nx):
            value = row[i]
            bad += value - value != 0.0
    return bad


@njit(inline="always")
def _keep_rows(u_lv, v_lv, frames_u, frames_v, sp, t, s, y, nx, n):  # pragma: no cover - jit
    """After global step ``n`` (local ``t`` done): save row ``y`` / count its non-finite cells."""
    save = n % sp.save_every == 0
    frame = n // sp.save_every
    cur = _roles(sp.n_levels, t + 1)[0]
    bad = _keep_row(u_lv[cur], frames_u, frame, s, y, sp.gy, sp.gx, nx, save)
    if sp.n_fields == 2:
        bad += _keep_row(v_lv[cur], frames_v, frame, s, y, sp.gy, sp.gx, nx, save)
    return bad


# ----------------------------------------------------------------------------------- drivers
@njit(parallel=True, cache=True)
def run_samples(u_lv, v_lv, frames_u, frames_v, sp, n_steps, step0, blown):  # pragma: no cover
    """Advance each sample (in parallel) by ``n_steps`` steps numbered ``step0 + 1, ...``.

    ``blown[s]`` receives the first checked step at which sample ``s`` held NaN/inf (the
    sample then stops), else stays as given (-1).
    """
    n_samples, yp, xp = u_lv[0].shape
    ny = yp - 2 * sp.gy
    nx = xp - 2 * sp.gx
    for s in prange(n_samples):
        for t in range(n_steps):
            _fill_levels(u_lv, v_lv, sp, t, s)
            for y in range(sp.gy, sp.gy + ny):
                _update_row(u_lv, v_lv, sp, t, s, y, nx)
            n = step0 + t + 1
            if n % sp.save_every == 0 or n % sp.check_every == 0:
                bad = 0
                for y in range(ny):
                    bad += _keep_rows(u_lv, v_lv, frames_u, frames_v, sp, t, s, y, nx, n)
                if bad > 0:
                    blown[s] = n
                    break


@njit(parallel=True, cache=True)
def run_rows(u_lv, v_lv, frames_u, frames_v, sp, n_steps, step0, blown):  # pragma: no cover
    """As :func:`run_samples`, but step by step with the rows of all samples in parallel.

    Stops after the first step at which any sample held NaN/inf (recorded in ``blown``).
    """
    n_samples, yp, xp = u_lv[0].shape
    ny = yp - 2 * sp.gy
    nx = xp - 2 * sp.gx
    n_rows = n_samples * ny
    bad = np.zeros(n_rows, dtype=np.int64)
    for t in range(n_steps):
        for s in range(n_samples):
            _fill_levels(u_lv, v_lv, sp, t, s)
        for r in prange(n_rows):
            _update_row(u_lv, v_lv, sp, t, r // ny, sp.gy + r % ny, nx)
        n = step0 + t + 1
        if n % sp.save_every == 0 or n % sp.check_every == 0:
            for r in prange(n_rows):
                bad[r] = _keep_rows(u_lv, v_lv, frames_u, frames_v, sp, t, r // ny, r % ny,
                                    nx, n)
            stop = False
            for s in range(n_samples):
                if bad[s * ny:(s + 1) * ny].sum() > 0:
                    blown[s] = n
                    stop = True
            if stop:
                return


# ------------------------------------------------------------------- building a spec (Python)
_BC_CODES = {"periodic": PERIODIC, "dirichlet": DIRICHLET, "neumann": NEUMANN}
_NO_OFFSETS = np.zeros(1, dtype=np.int64)
Layout = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # (mode, w, dys, dxs)


def stencil_layout(stencil: Stencil) -> Layout:
    """``(mode, w, dys, dxs)`` of a :class:`~gridformer.solvers.Stencil` for the fused kernels.

    Stencils within the 3 x 3 box whose offsets are in row-major order (all that the solvers
    build) get a dense layout: LINE in 1-D, CROSS for the 5-point star, BOX otherwise; any other
    stencil runs GENERIC, term by term in its own order.
    """
    offsets = stencil.offsets
    if stencil.ndim == 1:
        offsets = np.column_stack([np.zeros(len(offsets), dtype=np.int64), offsets[:, 0]])
    keys = [tuple(o) for o in offsets.tolist()]
    if np.abs(offsets).max() <= 1 and keys == sorted(keys):
        w = np.zeros(9)
        for (dy, dx), weight in zip(keys, stencil.weights, strict=True):
            w[3 * (dy + 1) + dx + 1] = weight
        if stencil.ndim == 1:
            mode = LINE
        else:
            mode = CROSS if all(abs(dy) + abs(dx) <= 1 for dy, dx in keys) else BOX
        return mode, w, _NO_OFFSETS, _NO_OFFSETS
    return (GENERIC, np.ascontiguousarray(stencil.weights, dtype=np.float64),
            np.ascontiguousarray(offsets[:, 0]), np.ascontiguousarray(offsets[:, 1]))


def ghosts_for(stencil: Stencil) -> tuple[int, int]:
    """Ghost widths ``(gy, gx)``: the stencil's radius, at least 1 on each spatial axis."""
    radius = stencil.radius
    if stencil.ndim == 1:
        return 0, max(radius[0], 1)
    return max(radius[0], 1), max(radius[1], 1)


_DUMMY_LAYOUT: Layout = (LINE, np.zeros(9), _NO_OFFSETS, _NO_OFFSETS)


def make_spec(*, kind: int, ghosts: tuple[int, int], bc: BoundarySpec, n_levels: int = 2,
              u: Layout = _DUMMY_LAYOUT, v: Layout | None = None, beta: float = 0.0,
              dt: float = 0.0, spacing: tuple[float, float] = (1.0, 1.0),
              viscosity: float = 0.0, code: int = 0, p0: float = 0.0,
              p1: float = 0.0) -> FusedSpec:
    """A :class:`FusedSpec` with every field typed as numba expects (ints, floats, arrays).

    ``spacing`` is ``(hy, hx)``; ``v`` is the second field's stencil (Gray-Scott), None for one
    field. Saving and checking default to every step and every 32 steps.
    """
    kinds = np.zeros(2, dtype=np.int64)
    values = np.zeros((2, 2))
    for axis, dim in enumerate(("y", "x")):
        if dim in bc:
            kinds[axis] = _BC_CODES[bc[dim].kind]
            values[axis] = bc[dim].values
    second = u if v is None else v
    return FusedSpec(
        int(kind), int(n_levels), 1 if v is None else 2, int(ghosts[0]), int(ghosts[1]),
        kinds, values, int(u[0]), u[1], u[2], u[3], int(second[0]), second[1], second[2],
        second[3], float(beta), float(dt), float(spacing[0]), float(spacing[1]),
        float(viscosity), int(code), float(p0), float(p1), 1, 32)
