"""The two public entry points: :func:`solve` and :func:`update_stencil`."""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import xarray as xr
from gridformer.solvers.advection import Advection
from gridformer.solvers.backend import get_backend
from gridformer.solvers.boundary import describe_bc, parse_bc
from gridformer.solvers.burgers import Burgers
from gridformer.solvers.equation import Equation
from gridformer.solvers.grid import Grid, as_grid, normalize_spacing
from gridformer.solvers.heat import Heat
from gridformer.solvers.reaction_diffusion import AllenCahn, FisherKPP, GrayScott
from gridformer.solvers.stability import (
    BlowUpError,
    Stability,
    UnstableStepWarning,
    check_dt,
    unstable_text,
)
from gridformer.solvers.wave import Wave

__all__ = ["AUTO_DT_SAFETY", "EQUATIONS", "BlowUpError", "UnstableStepWarning", "solve",
           "update_stencil"]

EQUATIONS: dict[str, type[Equation]] = {
    cls.name: cls for cls in (Heat, Advection, Burgers, Wave, FisherKPP, AllenCahn, GrayScott)
}
AUTO_DT_SAFETY = 0.9  # dt=None picks this fraction of the largest stable dt
_PER_AXIS_PARAMS = ("diffusivity", "velocity")
_CHECK_EVERY = 32  # steps between non-finite checks (also checked at every save)
_CHUNK_CELLS = 1 << 25  # cell updates per compiled call (~10-50 ms on one core)

ProgressFn = Callable[..., Iterable[int]]


def equation_class(equation: str) -> type[Equation]:
    """The :class:`Equation` subclass called ``equation``."""
    if equation not in EQUATIONS:
        msg = f"unknown equation {equation!r}; valid: {', '.join(EQUATIONS)}"
        raise ValueError(msg)
    return EQUATIONS[equation]


def _choose_dt(eq: Equation, stab: Stability, dt: Any) -> tuple[float, str]:
    """Check a given ``dt`` against ``stab`` or pick one; returns ``(dt, note)``."""
    given = check_dt(dt, allow_none=True)
    if not math.isfinite(stab.rate):  # finite parameters over a tiny spacing can overflow
        msg = (f"{eq.name} with {eq.describe()} on spacing {list(eq.spacing)} has no stable dt: "
               f"its {stab.name} per unit dt, {stab.formula} with dt = 1, overflows")
        raise ValueError(msg)
    if given is None:
        if math.isinf(stab.dt_max):
            msg = (
                f"dt=None: nothing limits the step of {eq.name} with {eq.describe()}; "
                "pass dt="
            )
            raise ValueError(msg)
        chosen = AUTO_DT_SAFETY * stab.dt_max
        return chosen, (f"dt=None: chose dt={chosen:.6g} = {AUTO_DT_SAFETY} x the largest stable "
                        f"dt {stab.dt_max:.6g} ({stab.name} {stab.number(chosen):.3g} <= "
                        f"{stab.limit:g})")
    if not stab.stable(given):
        msg = f"{unstable_text(eq, stab, given)}; use dt <= {stab.dt_max:.6g}"
        raise ValueError(msg)
    return given, f"dt={given!r} given ({stab.name} {stab.number(given):.3g} <= {stab.limit:g})"


def _check_steps(steps: Any, save_every: Any) -> tuple[int, int]:
    values = []
    for name, value in (("steps", steps), ("save_every", save_every)):
        try:
            number = operator.index(value)
        except TypeError:
            msg = f"{name} must be an integer, got {value!r}"
            raise TypeError(msg) from None
        if isinstance(value, bool) or number < 1:
            msg = f"{name}={value!r} must be a positive integer"
            raise ValueError(msg)
        values.append(number)
    steps, save_every = values
    if steps % save_every:
        divisors = [d for d in range(1, steps + 1) if steps % d == 0]
        shown = ", ".join(map(str, divisors[:12])) + (", ..." if len(divisors) > 12 else "")
        msg = (
            f"save_every={save_every} does not divide steps={steps}; "
            f"use a divisor of {steps}: {shown}"
        )
        raise ValueError(msg)
    return steps, save_every


def _netcdf_value(value: Any) -> Any:
    """attrs must be str, numbers or 1-D number lists in NetCDF."""
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, tuple | list):
        return [float(v) for v in value] if len(value) != 1 else float(value[0])
    if value is None:
        return "none"
    return value


def _attrs(eq: Equation, grid: Grid, dt: float, note: str, stab: Stability, bc_text: str,
           steps: int, save_every: int, backend_name: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "equation": eq.name, "scheme": eq.scheme, "dt": dt, "dt_note": note,
        "spacing": list(grid.spacing), "spatial_dims": " ".join(grid.spatial_dims),
        "bc": bc_text, "steps": steps, "save_every": save_every, "backend": backend_name,
        **stab.attrs(dt),
    }
    for key, value in eq.scalar_params().items():
        attrs[key] = _netcdf_value(value)
    for key in eq.field_params:  # grid-shaped parameters: only whether they were given
        attrs[key] = "given" if eq.params.get(key) is not None else "none"
    return attrs


def solve(
    equation: str,
    u0: xr.DataArray | xr.Dataset | np.ndarray,
    *,
    steps: int,
    dt: float | None = None,
    bc: Any = "periodic",
    save_every: int = 1,
    spacing: float | tuple[float, ...] | None = None,
    device: str = "cpu",
    progress: ProgressFn | None = None,
    **params: Any,
) -> xr.Dataset:
    """Solve ``equation`` from ``u0`` for ``steps`` explicit time steps.

    Parameters
    ----------
    equation
        ``"heat"``, ``"advection"``, ``"burgers"``, ``"wave"``, ``"fisher_kpp"``,
        ``"allen_cahn"`` or ``"gray_scott"`` (see each module for the PDE and scheme).
    u0
        Initial state: ``xr.DataArray`` with dims ``("x",)`` / ``("y", "x")``, optionally with a
        leading ``"sample"`` dim (solved as one batch), uniform coordinates in length units;
        or an ndarray ``(X,)``, ``(Y, X)``, ``(S, Y, X)`` with ``spacing=``. For Gray-Scott an
        ``xr.Dataset`` with variables ``u`` and ``v`` is accepted.
    steps
        Number of time steps.
    dt
        Time step (time units). ``None`` picks ``0.9`` x the largest stable step; the choice
        is recorded in ``attrs["dt_note"]``. An unstable ``dt`` raises ``ValueError``.
    bc
        ``"periodic"``, ``"dirichlet"`` (wall value 0), ``"neumann"`` (zero flux), a
        :class:`~gridformer.solvers.BoundaryCondition` (e.g. Dirichlet values), or
        ``{dim: bc}``.
    save_every
        Keep every ``save_every``-th step; must divide ``steps``.
    spacing
        Grid spacing ``dx`` or ``(dy, dx)``; required for ndarray ``u0``.
    device
        ``"cpu"`` (compiled numba kernels), ``"cuda"``/``"cuda:N"`` (torch, float64),
        ``"auto"`` (CUDA when present), ``"torch-cpu"`` (the torch code on CPU), ``"numpy"``
        (plain array expressions, a reference).
    progress
        Optional wrapper ``progress(iterable, total=, desc=)`` yielding the step numbers
        (e.g. :func:`gridformer._progress.progress`).
    **params
        The equation's physical parameters, all required (there are no defaults): heat
        ``diffusivity``; advection ``velocity``; burgers ``viscosity``; wave ``speed`` (and
        optionally ``initial_velocity``, zero when not given); fisher_kpp / allen_cahn
        ``diffusivity`` and ``rate``; gray_scott ``diffusivity_u``, ``diffusivity_v``,
        ``feed``, ``kill`` and ``v0``. Plus ``scheme=`` (e.g. ``velocity=1.0,
        scheme="lax_wendroff"``). ``EQUATIONS[name].example_params()`` gives typical values.

    Returns
    -------
    xr.Dataset
        Variable ``u`` (and ``v`` for Gray-Scott), dims ``("time", [sample,] [y,] x)``,
        float64, ``time`` in physical time (``0, save_every*dt, ..., steps*dt``); attrs record
        the equation, scheme, dt (and ``dt_note``: how it was chosen), spacing, bc, parameters,
        the scheme's stability number (``cfl``; ``cfl_name`` says what it is, e.g.
        ``"diffusion number"``, ``cfl_formula`` how it is computed, ``cfl_limit`` its limit,
        ``dt_max`` the largest stable dt) and the classical numbers the scheme has
        (``diffusion_numbers``, ``courant_numbers`` per axis, ``reaction_number``).

    Raises
    ------
    TypeError
        A missing or unknown parameter, or one that is not a number.
    ValueError
        Bad names, dims, coordinates or values (parameters must be finite and in range), or an
        unstable ``dt``.
    BlowUpError
        The solution became NaN/inf (the message names the step).
    """
    eq_cls = equation_class(equation)
    if isinstance(u0, xr.Dataset):
        if "u" not in u0:
            msg = f"u0 as a Dataset needs a variable 'u', got {list(u0.data_vars)}"
            raise ValueError(msg)
        if "v" in u0 and "v0" in eq_cls.field_params:
            params.setdefault("v0", u0["v"])
        u0 = u0["u"]
    grid = as_grid(u0, spacing)
    eq = eq_cls(grid.spacing, params.pop("scheme", None), **params)
    steps, save_every = _check_steps(steps, save_every)
    bc_spec = parse_bc(bc, grid.spatial_dims)
    state = {"u": grid.data}
    for name in eq.field_params:
        if eq.params.get(name) is not None:
            state[name] = grid.field(eq.params[name], name)
        elif name in eq.required_field_params:
            msg = f"{eq.name} needs {name}= (an array like u0), or u0 as a Dataset"
            raise ValueError(msg)
    stab = eq.stability(state)
    dt, note = _choose_dt(eq, stab, dt)
    backend = get_backend(device)
    integrator = eq.integrator(dt, backend, bc_spec, state)

    n_saves = steps // save_every + 1
    frames = {name: np.empty((n_saves, *grid.data.shape)) for name in eq.fields}  # (T, S, Y, X)
    integrator.save(frames, 0)
    blown = _run(integrator, steps, frames, save_every, progress, eq.name)
    if blown is not None:
        msg = (
            f"{eq.name} solve blew up: non-finite values (NaN/inf) found at step {blown} of "
            f"{steps} (t={blown * dt:.6g}); the {stab.name} was {stab.number(dt):.3g} (limit "
            f"{stab.limit:g}) at the start; try a smaller dt or a smoother u0"
        )
        raise BlowUpError(msg)

    times = np.arange(n_saves) * save_every * dt
    dims = ("time", *grid.dims)
    coords = {"time": ("time", times, {"long_name": "time", "units": "1"}), **grid.coords}
    data_vars = {name: (dims, grid.unpack(values), dict(grid.attrs))
                 for name, values in frames.items()}
    attrs = _attrs(eq, grid, dt, note, stab, describe_bc(bc_spec), steps, save_every, backend.name)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _chunk_ends(steps: int, cells: int) -> list[int]:
    """Step numbers after which :func:`_run` returns to Python (about ``_CHUNK_CELLS`` each)."""
    chunk = max(1, min(steps, _CHUNK_CELLS // max(cells, 1)))
    return [*range(chunk, steps, chunk), steps]


def _run(integrator: Any, steps: int, frames: dict[str, np.ndarray], save_every: int,
         progress: ProgressFn | None, name: str) -> int | None:
    """Advance all steps in chunks; return the first step found non-finite, or None.

    Each chunk is one :meth:`~.equation.Integrator.run` call (one compiled call on CPU), so
    Python is not involved per step; chunks keep Ctrl-C and the progress bar responsive.
    """
    ends: Iterable[int] = _chunk_ends(steps, int(np.prod(frames["u"].shape[1:])))
    if progress is not None:
        ends = _paced(progress(range(1, steps + 1), total=steps, desc=f"solve {name}"), ends)
    done = 0
    for end in ends:
        blown = integrator.run(end - done, done, frames, save_every, _CHECK_EVERY)
        if blown is not None:
            return blown
        done = end
    return None


def _paced(step_numbers: Iterable[int], ends: list[int]) -> Iterator[int]:
    """Yield each chunk end when the progress wrapper's step numbers reach it."""
    wanted = set(ends)
    for n in step_numbers:
        if n in wanted:
            yield n


def update_stencil(equation: str, *, dt: float, spacing: float | tuple[float, ...],
                   **params: Any) -> xr.DataArray:
    """Coefficients of one explicit step of a linear scheme as an ``xr.DataArray``.

    Parameters
    ----------
    equation
        ``"heat"``, ``"advection"`` or ``"wave"`` (nonlinear equations raise ``ValueError``).
    dt
        Time step (time units).
    spacing
        ``dx`` (1-D) or ``(dy, dx)`` (2-D). A single number with a two-component
        ``diffusivity``/``velocity`` means a 2-D grid with equal spacing.
    **params
        The equation's physical parameters (required, as in :func:`solve`) and ``scheme=``.

    Returns
    -------
    xr.DataArray
        Dims ``("dy", "dx")`` or ``("dx",)`` with integer offset coords; the weight at
        ``(dy, dx)`` multiplies ``u[y + dy, x + dx]``. attrs: equation, scheme, dt, spacing,
        parameters, the stability number as in :func:`solve` (``cfl_name``, ``cfl``, ...) and
        ``stable`` (1 within the limit, else 0). For ``wave`` the update also adds
        ``attrs["previous_weight"] * u^{n-1}``.

    Warns
    -----
    UnstableStepWarning
        ``dt`` exceeds the stability limit: the stencil amplifies some Fourier modes (for heat
        its centre weight is negative). The message names dt, the limit and the largest
        stable dt.
    """
    eq_cls = equation_class(equation)
    if not eq_cls.linear:
        linear = ", ".join(name for name, cls in EQUATIONS.items() if cls.linear)
        msg = (f"{equation} is nonlinear: its update has no fixed stencil; update_stencil is "
               f"defined for {linear}")
        raise ValueError(msg)
    dt = check_dt(dt)
    ndim = len(np.atleast_1d(np.asarray(spacing, dtype=float)))
    if ndim == 1 and any(np.size(params.get(name)) == 2 for name in _PER_AXIS_PARAMS):
        ndim = 2
    eq = eq_cls(normalize_spacing(spacing, ndim), params.pop("scheme", None), **params)
    stab = eq.stability(None)
    stable = stab.stable(dt)
    if not stable:
        msg = (f"{unstable_text(eq, stab, dt)}: this stencil amplifies some Fourier modes; the "
               f"largest stable dt is {stab.dt_max:.6g}")
        warnings.warn(msg, UnstableStepWarning, stacklevel=2)
    attrs = {"long_name": "update stencil weight", "units": "1", "equation": eq.name,
             "scheme": eq.scheme, "dt": dt, "spacing": list(eq.spacing), **stab.attrs(dt),
             "stable": int(stable)}
    attrs.update({k: _netcdf_value(v) for k, v in eq.scalar_params().items()})
    attrs.update(eq.stencil_attrs())
    return eq.stencil(dt).to_dataarray(**attrs)
