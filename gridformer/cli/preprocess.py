"""``gridformer preprocess DATA.nc ... --out STORE.zarr``: a normalised token store for training.

Examples::

    gridformer preprocess era5_t2m_*.nc --out t2m.zarr --patch-size 4 \\
        --anomalies dayofyear --stats-time 1980,2009
    gridformer preprocess era5_*.nc --variables t2m,z500 --out era5.zarr --patch-size 4 \\
        --scheduler tcp://10.0.0.5:8786          # on a dask.distributed cluster

Reads the NetCDF files lazily (one chunk of whole time steps per task), takes anomalies from
the climatology of the statistics period (optional), standardises each variable with one mean
and standard deviation over that period, tokenizes, and writes a zarr token store atomically
(a temporary store beside ``--out``, then one rename). Without ``--scheduler`` it runs on this
machine's threads; with it, on that dask scheduler's workers (which must see the files and
``--out``, and have gridformer installed). Train on the store with a config whose data section
is ``store: STORE.zarr`` (``gridformer train``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from gridformer.cli.common import UsageError, add_output_arguments, parse_int_tuple, write_result

__all__ = ["register", "run"]


def _pair(text: str) -> tuple[str, str]:
    parts = text.split(",")
    if len(parts) != 2 or not all(parts):
        msg = f"{text!r} is not START,STOP (time labels, e.g. 1980,2009 or 1980-01-01,2009-12-31)"
        raise argparse.ArgumentTypeError(msg)
    return parts[0], parts[1]


def register(subparsers: Any) -> None:
    """Add the ``preprocess`` subcommand."""
    p = subparsers.add_parser(
        "preprocess", help="NetCDF -> normalised token store (zarr), locally or on dask",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="NetCDF file(s) or a glob pattern")
    p.add_argument("--patch-size", type=parse_int_tuple, required=True, metavar="P[,P]",
                   help="cells per token along each spatial dim")
    p.add_argument("--variables", default=None, metavar="A,B",
                   help="data variables to keep (default: all)")
    p.add_argument("--time", type=_pair, default=None, metavar="START,STOP",
                   help="time steps to store (labels, inclusive; default: all)")
    p.add_argument("--stats-time", type=_pair, default=None, metavar="START,STOP",
                   help="period of the climatology and statistics, e.g. the training years "
                        "(default: the stored steps)")
    p.add_argument("--anomalies", choices=("month", "dayofyear"), default=None,
                   help="subtract the monthly or daily climatology of the statistics period")
    p.add_argument("--no-normalize", dest="normalize", action="store_false",
                   help="keep the (anomaly) values instead of standardising them")
    p.add_argument("--fill-value", type=float, default=0.0,
                   help="token value of missing and padding cells (default 0)")
    p.add_argument("--chunk-steps", type=int, default=None, metavar="N",
                   help="time steps per task (default: sized to the workers' memory)")
    p.add_argument("--store-steps", type=int, default=None, metavar="N",
                   help="time steps per stored zarr chunk (default: about 2 MiB of tokens)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler to run on, e.g. tcp://host:8786 "
                        "(default: this machine)")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for --scheduler to answer (default 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_output_arguments(p, out_help="the token store to write (a folder, e.g. t2m.zarr)")
    p.set_defaults(func=run)


def _patch(values: tuple[int, ...]) -> int | tuple[int, ...]:
    return values[0] if len(values) == 1 else tuple(values)


def _write(args: argparse.Namespace, client: Any) -> Any:
    from gridformer.datasets import open_dataset, write_token_store
    from gridformer.datasets.preprocess import token_chunks

    data = args.data[0] if len(args.data) == 1 else [Path(p) for p in args.data]
    variables = args.variables.split(",") if args.variables else None
    probe = open_dataset(data, variables=variables, chunks={})  # sizes only, nothing read
    if args.time is not None:
        probe = probe.sel(time=slice(*args.time))
    chunk, store_steps = token_chunks(probe, _patch(args.patch_size), client=client,
                                      chunk_steps=args.chunk_steps,
                                      store_steps=args.store_steps)
    ds = open_dataset(data, variables=variables, chunks={"time": chunk})  # one chunk per task
    return write_token_store(
        ds, args.out, patch_size=_patch(args.patch_size), anomalies=args.anomalies,
        normalize=args.normalize, time=args.time, stats_time=args.stats_time,
        fill_value=args.fill_value, chunk_steps=chunk, store_steps=store_steps, client=client,
        overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    """Write the token store; print a one-line summary and the standard result record."""
    started = time.perf_counter()
    if args.out is None:
        msg = "--out STORE.zarr is required: the token store to write"
        raise UsageError(msg)
    if args.out.exists() and not args.overwrite:
        msg = f"--out={str(args.out)!r} exists; pass --overwrite to replace it"
        raise UsageError(msg)
    client = None
    if args.scheduler is not None:
        from gridformer.datasets._cluster import connect

        client = connect(args.scheduler, timeout=args.scheduler_timeout)
    try:
        store = _write(args, client)
    finally:
        if client is not None:
            client.close()
    metrics = {"store": str(store.path), "steps": store.n_time, "tokens": store.n_tokens,
               "features": store.n_features, "settings": store.settings,
               "statistics": store.meta["statistics"],
               "scheduler": args.scheduler or "local threads",
               "store_steps": int(store.tokens.chunks[0])}
    config = {k: v for k, v in vars(args).items() if k not in ("func", "json", "debug")}
    write_result(args.json, command="preprocess", config=config, metrics=metrics,
                 started=started)
    print(f"wrote {store.n_time} steps x {store.n_tokens} tokens x {store.n_features} features "
          f"to {store.path} ({metrics['scheduler']})")
    return 0
