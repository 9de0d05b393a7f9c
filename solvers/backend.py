"""Where the arithmetic runs: compiled numba kernels on CPU, array expressions with torch on CUDA.

Both backends offer the same few operations on ``(S, Y + 2 gy, X + 2 gx)`` float64 buffers
(stencil step, Burgers step, reaction step, non-finite check); the integrators in the equation
modules are written once against this interface. The numba backend also runs many steps per
call (:meth:`NumbaBackend.run`: ghost filling, update, saving and blow-up checks fused in
:mod:`.fused`), which is what :func:`~gridformer.solvers.solve` uses on CPU. torch is imported
only when a torch backend is built.

Devices:

* ``"cpu"`` -- numba kernels (the default and the fast CPU path);
* ``"auto"`` -- ``"cuda"`` when torch sees a GPU, else ``"cpu"`` (imports torch to ask);
* ``"cuda"``, ``"cuda:N"`` -- torch on that GPU, float64;
* ``"torch-cpu"`` -- the torch code on CPU (to test the CUDA path without a GPU);
* ``"numpy"`` -- plain numpy array expressions (a reference for benchmarks and tests).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numba
import numpy as np
from gridformer.solvers import fused, kernels
from gridformer.solvers.stencil import Stencil

__all__ = ["DEVICES", "ArrayBackend", "NumbaBackend", "get_backend"]

Array = Any  # numpy.ndarray or torch.Tensor, (S, Y + 2 gy, X + 2 gx) float64

DEVICES = ("cpu", "auto", "cuda", "cuda:N", "torch-cpu", "numpy")


# one or a few grids of at least this many cells run row-parallel step by step; smaller ones
# (and batches with a sample per thread) run sample-parallel, all steps per sample at once
ROWS_MIN_CELLS = 1 << 17


class NumbaBackend:
    """CPU backend: numpy buffers stepped by compiled kernels.

    Parameters
    ----------
    fused
        Run many steps per call with the kernels of :mod:`.fused` (default). ``False`` keeps
        one Python-level step at a time with :mod:`.kernels` (the reference the fused path is
        tested against).
    driver
        ``"auto"`` (row-parallel for fewer samples than numba threads on grids of at least
        ``ROWS_MIN_CELLS`` cells, else sample-parallel), ``"samples"`` or ``"rows"``.
    """

    name = "numba"
    xp = np

    def __init__(self, fused: bool = True, driver: str = "auto") -> None:
        if driver not in ("auto", "samples", "rows"):
            msg = f"driver={driver!r} is not one of 'auto', 'samples', 'rows'"
            raise ValueError(msg)
        self.fused = fused
        self.driver = driver

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, dtype=np.float64)

    def asarray(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(array, dtype=np.float64)

    def copy_to_host(self, view: np.ndarray, out: np.ndarray) -> None:
        """Copy ``view`` ``(S, Y, X)`` into ``out``."""
        np.copyto(out, view)

    def prepare(self, stencil: Stencil) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dys, dxs = kernels.offsets_for_kernel(stencil.offsets)
        return dys, dxs, np.ascontiguousarray(stencil.weights)

    def stencil_step(self, src: Array, dst: Array, prepared: Any, ghosts: tuple[int, int],
                     prev: Array | None = None, beta: float = 0.0) -> None:
        dys, dxs, weights = prepared
        kernels.stencil_step(src, dst, dys, dxs, weights, int(ghosts[0]), int(ghosts[1]),
                             dst if prev is None else prev, float(beta))

    def burgers_step(self, src: Array, dst: Array, ghosts: tuple[int, int], dt: float,
                     spacing: tuple[float, float], viscosity: float, flux: str) -> None:
        kernels.burgers_step(src, dst, int(ghosts[0]), int(ghosts[1]), float(dt),
                             float(spacing[0]), float(spacing[1]), float(viscosity),
                             kernels.FLUX_CODES[flux])

    def react_step(self, u: Array, v: Array | None, u_out: Array, v_out: Array | None,
                   ghosts: tuple[int, int], dt: float, kind: str, p0: float, p1: float) -> None:
        kernels.react_step(u, u if v is None else v, u_out, u_out if v_out is None else v_out,
                           int(ghosts[0]), int(ghosts[1]), float(dt), kernels.REACTION_CODES[kind],
                           float(p0), float(p1))

    def nonfinite(self, buf: Array) -> bool:
        return bool(kernels.nonfinite(buf))

    def run(self, levels: dict[str, list[np.ndarray]], frames: dict[str, np.ndarray],
            spec: fused.FusedSpec, n_steps: int, step0: int) -> int | None:
        """Advance ``n_steps`` steps (numbered ``step0 + 1, ...``) in one compiled call.

        ``levels`` holds each field's buffers in role order (``[cur, nxt]`` or
        ``[prev, cur, nxt]``) and is rotated in place to the roles after the run; ``frames``
        ``(T, S, Y, X)`` per field receive the saved states. Returns the first checked step
        with NaN/inf, or None.
        """
        u_lv = _as_triple(levels["u"])
        v_lv = _as_triple(levels["v"]) if "v" in levels else u_lv
        frames_u = frames["u"]
        frames_v = frames.get("v", frames_u)
        n_samples, yp, xp = u_lv[0].shape
        cells = (yp - 2 * spec.gy) * (xp - 2 * spec.gx)
        rows = self.driver == "rows" or (
            self.driver == "auto" and n_samples < numba.get_num_threads()
            and cells >= ROWS_MIN_CELLS)
        driver = fused.run_rows if rows else fused.run_samples
        blown = np.full(n_samples, -1, dtype=np.int64)
        driver(u_lv, v_lv, frames_u, frames_v, spec, int(n_steps), int(step0), blown)
        for bufs in levels.values():
            n_levels = len(bufs)
            bufs[:] = [bufs[(i + n_steps) % n_levels] for i in range(n_levels)]
        hits = blown[blown >= 0]
        return int(hits.min()) if hits.size else None


def _as_triple(bufs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[cur, nxt]`` -> ``(cur, nxt, nxt)``; ``[prev, cur, nxt]`` as is (one numba type)."""
    if len(bufs) == 2:
        return bufs[0], bufs[1], bufs[1]
    return bufs[0], bufs[1], bufs[2]




class ArrayBackend:
    """Array-expression backend over numpy or torch (CPU or CUDA), same interface as numba's.

    The linear stencil step accumulates shifted views into the destination in place (no
    allocation per step); the nonlinear steps use plain array expressions.
    """

    fused = False  # one Python-level step at a time

    def __init__(self, xp: Any, device: str = "cpu", compile_steps: bool = False) -> None:
        self.xp = xp
        self.device = device
        self.is_torch = xp is not np
        self.name = f"torch:{device}" if self.is_torch else "numpy"
        self._scratch: dict[tuple[int, ...], Any] = {}
        # torch only: the linear stencil step as one compiled kernel (see _compiled_stencil)
        self.compile_steps = bool(compile_steps) and self.is_torch

    def zeros(self, shape: tuple[int, ...]) -> Any:
        if self.is_torch:
            return self.xp.zeros(shape, dtype=self.xp.float64, device=self.device)
        return np.zeros(shape, dtype=np.float64)

    def asarray(self, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array, dtype=np.float64)
        if self.is_torch:
            return self.xp.from_numpy(array).to(self.device)
        return array

    def copy_to_host(self, view: Array, out: np.ndarray) -> None:
        """Copy ``view`` ``(S, Y, X)`` into the host array ``out``.

        From a GPU through a page-locked staging buffer kept per shape: ``.cpu()`` copies into
        pageable memory, measured at ~0.7 GB/s for a 134 MB frame on an H100 machine (most of
        a 200-step solve), where a pinned copy runs at the link's speed.
        """
        if not (self.is_torch and view.is_cuda):
            np.copyto(out, view.numpy() if self.is_torch else view)
            return
        key = ("pinned", *view.shape)
        if key not in self._scratch:
            self._scratch[key] = self.xp.empty(tuple(view.shape), dtype=view.dtype,
                                               pin_memory=True)
        staging = self._scratch[key]
        staging.copy_(view)
        np.copyto(out, staging.numpy())

    def prepare(self, stencil: Stencil) -> list[tuple[int, int, float]]:
        offsets = stencil.offsets if stencil.ndim == 2 else np.column_stack(
            [np.zeros(len(stencil.offsets), dtype=np.int64), stencil.offsets[:, 0]])
        return [(int(dy), int(dx), float(w))
                for (dy, dx), w in zip(offsets.tolist(), stencil.weights, strict=True)]

    @staticmethod
    def _shift(buf: Array, ghosts: tuple[int, int], dy: int, dx: int) -> Array:
        gy, gx = ghosts
        ny, nx = buf.shape[1] - 2 * gy, buf.shape[2] - 2 * gx
        return buf[:, gy + dy:gy + dy + ny, gx + dx:gx + dx + nx]  # (S, Y, X) view

    def stencil_step(self, src: Array, dst: Array, prepared: Any, ghosts: tuple[int, int],
                     prev: Array | None = None, beta: float = 0.0) -> None:
        if self.compile_steps:
            step = self._compiled_stencil(prepared, ghosts, beta)
            try:
                step(src, dst) if beta == 0.0 else step(src, dst, prev)
            except Exception as error:  # no C++ compiler or Triton: eager from now on
                self._give_up_compiling(error)
            else:
                return
        out = self._shift(dst, ghosts, 0, 0)  # (S, Y, X) view of the interior
        if beta != 0.0:
            out[...] = self._shift(prev, ghosts, 0, 0)
            out *= beta
        else:
            out[...] = 0.0
        if self.is_torch:
            for dy, dx, w in prepared:
                out.add_(self._shift(src, ghosts, dy, dx), alpha=w)
            return
        scratch = self._scratch.get(out.shape)
        if scratch is None:
            scratch = self._scratch.setdefault(out.shape, np.empty(out.shape))
        for dy, dx, w in prepared:
            np.multiply(self._shift(src, ghosts, dy, dx), w, out=scratch)
            np.add(out, scratch, out=out)

    def _compiled_stencil(self, prepared: Any, ghosts: tuple[int, int], beta: float) -> Any:
        """``torch.compile`` of the whole linear step, one per stencil (compiled at first call).

        The eager step is one pass over memory per stencil point plus one (``out += w *
        shift``); compiled, it is one kernel that reads ``src`` once and writes the interior of
        ``dst`` once: on a GPU a step costs about one copy of the field instead of ~10.
        """
        key = (tuple(prepared), tuple(ghosts), float(beta))
        if key not in _COMPILED:  # shared by every solve in the process (one compile each)
            _COMPILED[key] = self.xp.compile(_linear_step(prepared, ghosts, beta),
                                             fullgraph=True, dynamic=False)
        return _COMPILED[key]

    def _give_up_compiling(self, error: Exception) -> None:
        self.compile_steps = False
        warnings.warn(f"torch.compile of the solver step failed on {self.device} "
                      f"({type(error).__name__}: {str(error)[:200]}); stepping eagerly "
                      f"(set GRIDFORMER_SOLVER_COMPILE=0 to skip the attempt)",
                      RuntimeWarning, stacklevel=3)

    def burgers_step(self, src: Array, dst: Array, ghosts: tuple[int, int], dt: float,
                     spacing: tuple[float, float], viscosity: float, flux: str) -> None:
        u = self._shift(src, ghosts, 0, 0)
        du = 0.0 * u
        axes = ((0, 1), (1, 0)) if ghosts[0] else ((0, 1),)
        for (ay, ax), h in zip(axes, (spacing[1], spacing[0]) if ghosts[0] else (spacing[1],),
                               strict=True):
            lo = self._shift(src, ghosts, -ay, -ax)
            hi = self._shift(src, ghosts, ay, ax)
            du = du - dt / h * (self._flux(u, hi, flux) - self._flux(lo, u, flux))
            du = du + viscosity * dt / h**2 * (hi - 2.0 * u + lo)
        self._shift(dst, ghosts, 0, 0)[...] = u + du

    def _flux(self, left: Array, right: Array, kind: str) -> Array:
        xp = self.xp
        if kind == "godunov":
            a = xp.clip(left, 0.0, None)
            b = xp.clip(right, None, 0.0)
            return xp.maximum(0.5 * a * a, 0.5 * b * b)
        return xp.where(left + right >= 0.0, 0.5 * left * left, 0.5 * right * right)

    def react_step(self, u: Array, v: Array | None, u_out: Array, v_out: Array | None,
                   ghosts: tuple[int, int], dt: float, kind: str, p0: float, p1: float) -> None:
        a = self._shift(u, ghosts, 0, 0)
        out = self._shift(u_out, ghosts, 0, 0)
        if kind == "fisher_kpp":
            out += dt * p0 * a * (1.0 - a)
        elif kind == "allen_cahn":
            out += dt * p0 * (a - a * a * a)
        else:
            b = self._shift(v, ghosts, 0, 0)
            uvv = a * b * b
            out += dt * (p0 * (1.0 - a) - uvv)
            self._shift(v_out, ghosts, 0, 0)[...] += dt * (uvv - (p0 + p1) * b)

    def nonfinite(self, buf: Array) -> bool:
        return not bool(self.xp.isfinite(buf).all())


#: Compiled linear steps by (stencil, ghosts, beta); torch recompiles per buffer shape itself.
_COMPILED: dict[tuple, Any] = {}


def _linear_step(prepared: list[tuple[int, int, float]], ghosts: tuple[int, int],
                 beta: float) -> Any:
    """``step(src, dst[, prev])``: ``dst`` interior = ``sum w * shift(src)`` (+ ``beta prev``)."""
    gy, gx = ghosts

    def step(src: Array, dst: Array, prev: Array | None = None) -> None:
        ny, nx = src.shape[1] - 2 * gy, src.shape[2] - 2 * gx
        acc = None
        for dy, dx, w in prepared:
            term = src[:, gy + dy:gy + dy + ny, gx + dx:gx + dx + nx] * w  # (S, Y, X)
            acc = term if acc is None else acc + term
        if prev is not None:
            acc = acc + prev[:, gy:gy + ny, gx:gx + nx] * beta
        dst[:, gy:gy + ny, gx:gx + nx] = acc

    # a code object of its own: torch caches compiled code per code object, with a limit on
    # recompiles (8), which one shared code object reaches after a few stencils and shapes
    step.__code__ = step.__code__.replace(co_name=f"linear_step_{len(_COMPILED)}")
    return step


def compile_default(device: str) -> bool:
    """Whether torch solver steps are compiled: ``GRIDFORMER_SOLVER_COMPILE`` (``1``/``0``) if
    set, else on for CUDA devices only (compiling takes seconds, paid back on long runs)."""
    flag = os.environ.get("GRIDFORMER_SOLVER_COMPILE", "").strip()
    if flag not in ("", "0", "1"):
        msg = f"GRIDFORMER_SOLVER_COMPILE={flag!r} must be 1 (compile), 0 (eager) or unset"
        raise ValueError(msg)
    return flag == "1" if flag else device.startswith("cuda")


def get_backend(device: str) -> NumbaBackend | ArrayBackend:
    """Backend for ``device`` (see the module docstring for the accepted names)."""
    if not isinstance(device, str):
        msg = f"device must be a string such as 'cpu' or 'cuda', got {device!r}"
        raise TypeError(msg)
    if device == "auto":
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return NumbaBackend()
        return get_backend("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return NumbaBackend()
    if device == "numpy":
        return ArrayBackend(np)
    if device == "torch-cpu" or device == "cuda" or device.startswith("cuda:"):
        import torch

        if device != "torch-cpu" and not torch.cuda.is_available():
            msg = f"device={device!r} requested but torch sees no CUDA GPU; use 'cpu'"
            raise ValueError(msg)
        return ArrayBackend(torch, "cpu" if device == "torch-cpu" else device,
                            compile_steps=compile_default(device))
    msg = f"unknown device {device!r}; valid: {', '.join(DEVICES)}"
    raise ValueError(msg)
