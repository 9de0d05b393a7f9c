"""Files of a teleconnection run: ``teleconnection.nc``, PNG maps, ``report.md``; summary lines.

Every file is written atomically (a temporary file, then ``os.replace``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from gridformer._io import atomic_path
from gridformer.datasets import write_netcdf
from gridformer.teleconnect.workflow import SweepResult, TeleconnectResult

__all__ = [
    "result_dataset",
    "summary_lines",
    "sweep_dataset",
    "sweep_figure",
    "write_report",
    "write_sweep_report",
]


def _token_dims(da: xr.DataArray) -> xr.DataArray:
    """A token-grid map with dims ``token_lat``/``token_lon`` (it shares a file with cells)."""
    return da.rename({"lat": "token_lat", "lon": "token_lon"})


def result_dataset(result: TeleconnectResult) -> xr.Dataset:
    """Maps of one run: ``attention``, ``correlation`` (and ``eof1``) on the cell grid, and the
    two token-grid maps that ``pattern_correlation`` compares."""
    ready = result.setup
    cells = result.attention_cells
    attention = cells.drop_vars("spread").rename("attention").copy()
    attention.attrs = {**cells.attrs, "long_name": "attention weight of the token holding the "
                       "cell (test-period mean; each token's weight repeated over its cells)"}
    spread = cells["spread"].copy().rename("attention_spread").assign_attrs(
        long_name="standard deviation over test samples of the attention weight", units="1")
    tokens = result.attention.drop_vars("spread")
    data = {
        "attention": attention, "attention_spread": spread,
        "correlation": ready.correlation.drop_vars("input", errors="ignore")
        if "input" not in ready.correlation.dims else ready.correlation,
        "attention_tokens": _token_dims(tokens.rename("attention_tokens")),
        "abs_correlation_tokens": _token_dims(ready.abs_correlation_tokens).assign_attrs(
            long_name="|correlation| averaged over the token's cells (max over inputs)",
            units="1"),
    }
    if ready.eof1 is not None:
        data["eof1"] = ready.eof1
    attrs = {"title": "gridformer teleconnect", "target": ready.config.target,
             "inputs": " ".join(ready.config.inputs), "query": ready.query.description,
             "distance_bias": str(result.distance_bias)}
    return xr.Dataset(data, attrs=attrs)


def sweep_dataset(sweep: SweepResult) -> xr.Dataset:
    """Maps of a sweep: ``attention`` stacked along ``distance_bias``, one ``correlation``."""
    first = result_dataset(sweep.runs[0])
    biases = [float(r.distance_bias) for r in sweep.runs]
    for name in ("attention", "attention_spread", "attention_tokens"):
        stacked = xr.concat([result_dataset(r)[name] for r in sweep.runs], dim="distance_bias")
        first[name] = stacked.assign_coords(distance_bias=biases)
    first["distance_bias"].attrs = {"long_name": "distance bias per 1000 km", "units": "1"}
    first.attrs["distance_bias"] = " ".join(f"{b:g}" for b in biases)
    return first


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return path


def _query_point(result: TeleconnectResult) -> tuple[float, float] | None:
    return result.setup.config.query


def write_report(result: TeleconnectResult, out: str | Path) -> list[Path]:
    """Write ``teleconnection.nc``, ``teleconnection.png`` (attention | correlation),
    ``eof1.png`` (when available) and ``report.md`` into ``out``; return the paths."""
    from gridformer import plot

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ready = result.setup
    paths = [write_netcdf(result_dataset(result), out / "teleconnection.nc")]
    corr = ready.correlation
    corr = corr.isel(input=0) if "input" in corr.dims else corr
    fig = plot.teleconnection(result.attention_cells, corr, query=_query_point(result),
                              box=_box(ready.config))
    paths.append(_save(fig, out / "teleconnection.png"))
    if ready.eof1 is not None:
        paths.append(_save(plot.field_map(ready.eof1, center=0.0), out / "eof1.png"))
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text(_markdown(result, [p.name for p in paths]))
    return [*paths, report]


def _box(config: Any) -> Any:
    return config.query_box


def sweep_figure(record: dict[str, Any]) -> Any:
    """Mean attention distance (km) and skill against the distance bias, one figure."""
    from gridformer.plot._axes import axes_for

    fig, (axis,) = axes_for(None, 1, names=["sweep"], panel_size=(6.0, 3.8))
    bias = np.asarray(record["distance_bias"], dtype=float)
    axis.plot(bias, record["mean_attention_distance_km"], marker="o", color="C0",
              label="mean attention distance")
    axis.axhline(record["uniform_attention_distance_km"], color="C0", linestyle=":",
                 label="uniform attention")
    axis.set_xlabel("distance bias per 1000 km (> 0 favours near tokens)")
    axis.set_ylabel("mean attention distance (km)", color="C0")
    twin = axis.twinx()
    twin.plot(bias, record["skill"], marker="s", color="C3", label=record["skill_name"])
    twin.set_ylabel(f"{record['skill_name']} (dimensionless)", color="C3")
    lines = axis.get_lines() + twin.get_lines()
    axis.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="best")
    axis.set_title("how far the model looks, and what it buys")
    return fig


def write_sweep_report(sweep: SweepResult, out: str | Path) -> list[Path]:
    """Write ``teleconnection.nc`` (maps per bias), ``sweep.png`` and ``report.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = sweep.record()
    paths = [write_netcdf(sweep_dataset(sweep), out / "teleconnection.nc"),
             _save(sweep_figure(record), out / "sweep.png")]
    rows = ["| distance bias | mean attention distance (km) | " + record["skill_name"]
            + " | pattern correlation |", "|---|---|---|---|"]
    for b, d, s, p in zip(record["distance_bias"], record["mean_attention_distance_km"],
                          record["skill"], record["pattern_correlation"], strict=True):
        rows.append(f"| {b:g} | {d:.0f} | {s:.3f} | {p:.3f} |")
    text = (f"# Distance-bias sweep\n\n{_setup_text(sweep.setup)}\n\nUniform attention would "
            f"reach {record['uniform_attention_distance_km']:.0f} km.\n\n" + "\n".join(rows)
            + "\n\nFiles: " + ", ".join(p.name for p in paths) + "\n")
    report = out / "report.md"
    with atomic_path(report) as tmp:
        tmp.write_text(text)
    return [*paths, report]


def _setup_text(ready: Any) -> str:
    c, p = ready.config, ready.prepared
    pairs = "/".join(str(len(v[0])) for v in p.pairs.values())
    lines = [f"Target `{c.target}` ({p.kind}) from inputs {', '.join(f'`{v}`' for v in c.inputs)}"
             f" of {', '.join(Path(f).name for f in ready.loaded.files)}; lead {c.lead} steps.",
             f"Train/validation/test pairs {pairs} (contiguous, no overlap); seasonal cycle "
             f"removed: {p.seasonal}; statistics from the training part only.",
             f"Query: {ready.query.description}; {p.layout.n_tokens} tokens of "
             f"{c.patch_size}x{c.patch_size} cells; GridFormer dim {c.dim}, depth {c.depth}, "
             f"heads {c.heads}, {c.epochs} epochs, seed {c.seed}."]
    lines += [f"Note: {n}" for n in ready.notes]
    return "\n".join(lines)


def _markdown(result: TeleconnectResult, files: list[str]) -> str:
    m = result.metrics
    lines = ["# Teleconnection map", "", _setup_text(result.setup), "",
             "| metric | value |", "|---|---|"]
    for key, value in m.items():
        if isinstance(value, float):
            lines.append(f"| {key} | {value:.4g} |")
        elif isinstance(value, dict):
            lines.append(f"| {key} | " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float)
                                                     else f"{k} {v}" for k, v in value.items())
                         + " |")
    lines += ["", "Files: " + ", ".join(files), ""]
    return "\n".join(lines)


def summary_lines(result: TeleconnectResult) -> list[str]:
    """The headline numbers of one run, one per line."""
    m = result.metrics
    score = m["test_skill"]
    key = "correlation" if m["target_kind"] == "index" else "query_correlation"
    return [
        f"attention peaks at ({m['peak_lat']:g}, {m['peak_lon']:g}); query: {m['query']}",
        f"pattern correlation with |correlation| {m['pattern_correlation']:.3f}; "
        f"attention mass in the top-|correlation| region "
        f"{m['attention_mass_in_top_correlation_region']:.3f} (uniform "
        f"{m['uniform_mass_in_top_correlation_region']:.3f})",
        f"mean attention distance {m['mean_attention_distance_km']:.0f} km (uniform "
        f"{m['uniform_attention_distance_km']:.0f} km)",
        f"test {key} {score[key]:.3f}, rmse {score.get('rmse', float('nan')):.4g} "
        f"(climatology {score['rmse_climatology']:.4g})",
    ]
