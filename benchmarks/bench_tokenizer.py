"""``PatchTokenizer.encode`` against a plain copy of the same array (one read, one write).

Cases (in GB/s of input bytes; each call allocates its output, as a user's call does):

* ``(64, 721, 1440)`` float32 in memory, patch 8 (721 rows: the last patch row is padded):
  ``encode`` vs ``ndarray.copy()`` (target: >= 0.5 of the copy);
* the same in patches of 4 and of 2 cells (narrow patches take their own loop);
* the same with a NaN land mask (30 % of the cells): the cell mask is built in a second pass;
* the same as float64 (``decode`` exactness needs the input's dtype kept).

``quick`` uses 8 time steps instead of 64.

Run alone: ``python benchmarks/bench_tokenizer.py [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from gridformer.tokenize import PatchTokenizer

if __package__:
    from benchmarks._common import compare, row, write_json
else:  # python benchmarks/bench_tokenizer.py
    from _common import compare, row, write_json  # type: ignore[no-redef]

DIMS = ("time", "lat", "lon")


def _case(name: str, data: np.ndarray, repeats: int, patch: int = 8) -> dict[str, Any]:
    tok = PatchTokenizer(patch_size=patch)

    def ours() -> None:
        tok.encode(data, dims=DIMS)

    def theirs() -> None:
        data.copy()

    mine, other = compare(ours, theirs, repeats)
    tokens, layout = tok.encode(data, dims=DIMS)
    return row(name, ours=mine, peer="ndarray.copy()", theirs=other, work=data.nbytes / 1e9,
               units="GB/s", target=0.5, shape=list(data.shape), dtype=str(data.dtype), patch=patch,
               tokens_shape=list(tokens.shape), valid_tokens=int(layout.valid.sum()))


def run(*, quick: bool = False) -> dict[str, Any]:
    """Time encode against ndarray.copy() on a global 0.25-degree grid (see the docstring)."""
    n_time = 8 if quick else 64
    repeats = 3 if quick else 5
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n_time, 721, 1440), dtype=np.float32)
    results = [_case(f"encode ({n_time}, 721, 1440) float32, patch 8", data, repeats)]
    results += [_case(f"encode ({n_time}, 721, 1440) float32, patch {patch}", data, repeats,
                      patch=patch) for patch in (4, 2)]
    land = rng.random((721, 1440)) < 0.3
    with_nan = data.copy()
    with_nan[:, land] = np.nan
    results.append(_case(f"encode ({n_time}, 721, 1440) float32 with 30% NaN, patch 8",
                         with_nan, repeats))
    del with_nan
    results.append(_case(f"encode ({n_time}, 721, 1440) float64, patch 8",
                         data.astype(np.float64), repeats))
    return {"name": "tokenizer", "results": results,
            "settings": {"quick": quick, "repeats": repeats, "patch_size": 8}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 time steps instead of 64")
    parser.add_argument("--json", metavar="PATH", default="-", help="output file ('-' = stdout)")
    args = parser.parse_args()
    write_json(run(quick=args.quick), args.json)


if __name__ == "__main__":
    sys.exit(main())
