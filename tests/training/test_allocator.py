"""tune_cpu_malloc: applied in a fresh process (it changes the whole process), refused input."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

PROBE = ("import json; from gridformer.training import tune_cpu_malloc; "
         "print(json.dumps(tune_cpu_malloc()))")


def _run(flag: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GRIDFORMER_CPU_MALLOC"}
    if flag is not None:
        env["GRIDFORMER_CPU_MALLOC"] = flag
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_settings_are_applied_by_glibc():
    done = _run(None)
    assert done.returncode == 0, done.stderr
    applied = json.loads(done.stdout)
    assert applied == {"M_MMAP_THRESHOLD": 32 * 2**20, "M_TRIM_THRESHOLD": 2**30,
                       "M_TOP_PAD": 256 * 2**20, "M_MMAP_MAX": 0}  # each accepted by mallopt


REUSE = """
import json, resource, sys
import torch
from gridformer.training import tune_cpu_malloc
if sys.argv[1] == "1":
    tune_cpu_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def rounds(n):
    for _ in range(n):
        block = torch.empty(16 * 2**20)  # 64 MiB, above glibc's largest mmap threshold
        block.fill_(1.0)
        del block
rounds(3)  # warm-up: the heap grows to hold the block
start = faults()
rounds(5)
print(json.dumps((faults() - start) // 5))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_a_freed_block_larger_than_the_mmap_threshold_is_reused_without_page_faults():
    """A batch's attention (B, H, N, N) is larger than 32 MiB: it must come back from the
    heap already mapped, not from a fresh mmap whose every page faults in again."""
    env = {k: v for k, v in os.environ.items() if k != "GRIDFORMER_CPU_MALLOC"}
    done = subprocess.run([sys.executable, "-c", REUSE, "1"], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) < 100  # per round; 16,384 (4 KiB pages) when mmapped


def test_zero_leaves_malloc_alone_and_other_values_are_refused():
    done = _run("0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) is None
    done = _run("yes")
    assert done.returncode != 0
    assert ("GRIDFORMER_CPU_MALLOC='yes' must be 1 (tune), 0 (leave malloc alone) or unset"
            in done.stderr)


def _tiny_fit_arguments():
    """A TINY model and four samples on a 4 x 4 layout, for one-step ``fit`` calls."""
    import dataclasses

    import torch

    from gridformer.model import TINY, GridFormer
    from gridformer.tokenize import TokenLayout

    layout = TokenLayout.for_grid((4, 4), patch_size=1)
    model = GridFormer(dataclasses.replace(TINY, in_features=2, out_features=2))
    data = (torch.randn(4, layout.n_tokens, 2), torch.randn(4, layout.n_tokens, 2))
    return model, data, {"layout": layout, "steps": 1, "batch_size": 2, "device": "cpu",
                         "progress": False}


def test_fit_tunes_malloc_on_the_cpu(monkeypatch):
    """``fit`` on the CPU applies the settings as ``gridformer train`` does (recorded here:
    the real call would change the test process)."""
    import importlib

    fit_module = importlib.import_module("gridformer.training.fit")  # the module, not fit()
    seen = []
    monkeypatch.setattr(fit_module, "tune_cpu_malloc", lambda: seen.append(1))
    model, data, options = _tiny_fit_arguments()
    fit_module.fit(model, data, **options)
    assert seen == [1]


def test_fit_refuses_a_bad_malloc_flag_before_any_process_group(monkeypatch):
    from gridformer.training import distributed, fit

    monkeypatch.setenv("GRIDFORMER_CPU_MALLOC", "yes")
    setups = []
    monkeypatch.setattr(distributed, "setup", lambda device: setups.append(device))
    model, data, options = _tiny_fit_arguments()
    with pytest.raises(ValueError, match=r"GRIDFORMER_CPU_MALLOC='yes' must be 1"):
        fit(model, data, **options)
    assert setups == []  # refused before distributed.setup could start a group
