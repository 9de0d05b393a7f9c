"""Teleconnections from a user's NetCDF file: train a GridFormer, map its attention on lat/lon.

What ``gridformer teleconnect`` runs, as a library::

    from gridformer.teleconnect import TeleconnectConfig, run_teleconnect, write_report

    config = TeleconnectConfig(inputs=("sst",), target="nino34", epochs=10, seed=0)
    result = run_teleconnect("sst_and_index.nc", config)
    result.metrics["pattern_correlation"]      # attention map vs |correlation| map
    result.attention                            # (lat, lon) token-grid map, coordinate spread
    write_report(result, "out/")                # teleconnection.nc, PNG maps, report.md

    sweep = run_sweep("data.nc", config, [4, 2, 1, 0.5, 0])   # one model per distance bias
    sweep.record()                              # {"distance_bias", "mean_attention_distance_km",
                                                #  "skill", ...}

Modules, one job each: ``config`` (:class:`TeleconnectConfig`), ``data`` (read and check the
files), ``prep`` (time split, anomalies, standardisation with training statistics, tokens),
``query`` (class token, point or box), ``model`` (build, train, read attention), ``maps`` (maps,
their comparison, skill), ``workflow`` (the run and the sweep), ``report`` (files). See
``docs/architecture.md``.
"""

from gridformer.teleconnect.config import COMBINE, SEASONAL, TeleconnectConfig
from gridformer.teleconnect.data import Loaded, load_variables
from gridformer.teleconnect.maps import region_mass, to_tokens
from gridformer.teleconnect.prep import MIN_PAIRS, Prepared, prepare
from gridformer.teleconnect.report import (
    result_dataset,
    summary_lines,
    sweep_dataset,
    write_report,
    write_sweep_report,
)
from gridformer.teleconnect.workflow import (
    SweepResult,
    TeleconnectResult,
    run_sweep,
    run_teleconnect,
    setup,
)

__all__ = [
    "COMBINE",
    "MIN_PAIRS",
    "SEASONAL",
    "Loaded",
    "Prepared",
    "SweepResult",
    "TeleconnectConfig",
    "TeleconnectResult",
    "load_variables",
    "prepare",
    "region_mass",
    "result_dataset",
    "run_sweep",
    "run_teleconnect",
    "setup",
    "summary_lines",
    "sweep_dataset",
    "to_tokens",
    "write_report",
    "write_sweep_report",
]
