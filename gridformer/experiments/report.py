"""Files of an experiment run: its figure (``NAME.png``) and a Markdown report (``NAME.md``).

Both are written atomically (``gridformer._io.atomic_path``); figures are drawn on
``matplotlib.figure.Figure`` with an explicit Agg canvas, so no global backend is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gridformer._io import atomic_path
from gridformer.experiments.harness import ExperimentResult

__all__ = ["format_summary", "metrics_table", "write_report"]


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return "[" + ", ".join(_number(v) for v in value) + "]"
    return f"{value:.4g}"


def format_summary(summary: Mapping[str, Any]) -> str:
    """``"0.8125 ± 0.0213"``, or a list of those for a curve."""
    mean, sd = summary["mean"], summary["sd"]
    if isinstance(mean, list):
        sds = sd if isinstance(sd, list) else [None] * len(mean)
        return "[" + ", ".join(format_summary({"mean": m, "sd": s})
                               for m, s in zip(mean, sds, strict=True)) + "]"
    return _number(mean) if sd is None else f"{_number(mean)} ± {_number(sd)}"


def metrics_table(result: ExperimentResult) -> str:
    """Markdown table: metric, mean ± sd over seeds, the value of every seed."""
    seeds = ", ".join(str(s) for s in result.seeds)
    lines = [f"| metric | mean ± sd | seeds {seeds} |", "|---|---|---|"]
    for key, summary in result.metrics.items():
        per_seed = "; ".join(_number(v) for v in summary["values"])
        lines.append(f"| `{key}` | {format_summary(summary)} | {per_seed} |")
    return "\n".join(lines)


def _markdown(result: ExperimentResult, figure: str | None) -> str:
    env = result.environment
    hardware = (f"{env.get('device_name', env['processor'])}, {env['cpu_count']} CPU cores "
                f"seen, torch {env['torch']} ({env['torch_threads']} threads)")
    settings = "\n".join(f"| `{k}` | `{v}` |" for k, v in result.settings.items())
    parts = [
        f"# Experiment `{result.experiment.name}`", "",
        f"**Claim.** {result.experiment.claim}", "",
        f"**Verdict ({result.verdict.outcome}).** {result.verdict.text}", "",
        f"- command: `{result.command}`",
        f"- date: {env['date']}; hardware: {hardware}; platform: {env['platform']}",
        f"- seeds: {result.seeds}; wall time: {result.seconds:.1f} s", "",
        "## Metrics (mean ± sd over seeds)", "", metrics_table(result), "",
        "## Settings", "", "| setting | value |", "|---|---|", settings, "",
    ]
    if figure is not None:
        parts += [f"![{result.experiment.name}]({figure})", ""]
    return "\n".join(parts)


def write_report(result: ExperimentResult, out_dir: str | Path) -> list[Path]:
    """Write ``<name>.png`` (when the experiment draws one) and ``<name>.md`` into ``out_dir``.

    Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = result.experiment.name
    written = []
    figure_name = None
    if result.experiment.figure is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = result.experiment.figure(result)
        FigureCanvasAgg(fig)
        with atomic_path(out / f"{name}.png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        figure_name = f"{name}.png"
        written.append(out / figure_name)
    with atomic_path(out / f"{name}.md") as tmp:
        tmp.write_text(_markdown(result, figure_name))
    written.append(out / f"{name}.md")
    return written
