"""Worker for test_distributed: one rank of a 2-process gloo run of ``fit``."""

import dataclasses
import json
import os
import sys

import torch

from gridformer.model import TINY, GridFormer
from gridformer.tokenize import TokenLayout
from gridformer.training import fit


def main(out: str) -> None:
    torch.set_num_threads(1)
    layout = TokenLayout.for_grid((4, 4), patch_size=1, periodic=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 1, generator=g)
    torch.manual_seed(0)
    model = GridFormer(dataclasses.replace(TINY, in_features=1, out_features=1))
    history = fit(model, (x, 2 * x), layout=layout, steps=3, batch_size=2, device="cpu")
    first = next(model.parameters()).detach().flatten()[:4].tolist()
    rank = os.environ["RANK"]
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"loss": history.train_loss, "param": first}, f)


if __name__ == "__main__":
    # A normal interpreter exit, as a user's script has: fit's DistributedContext holds the
    # tensors it all-reduces until gloo's worker threads let go of them (without that a rank
    # aborted here about once in 40-100 runs, issue 12).
    main(sys.argv[1])
