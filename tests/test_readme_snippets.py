"""The README's first Python blocks (solvers, tokens, GridFormer) run in order as written, and
so does its preprocess-and-train command block."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
SECTIONS = ("### Finite-difference ground truth", "### Tokens that remember their geometry",
            "### A transformer that shows its attention")


def _python_block(heading: str) -> str:
    section = README.split(heading, 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, heading
    return blocks[0]


def test_readme_solver_token_and_model_blocks_run_and_show_what_they_say():
    scope: dict = {}
    for heading in SECTIONS:
        exec(compile(_python_block(heading), f"README.md ({heading})", "exec"), scope)
    traj, tokens, layout = scope["traj"], scope["tokens"], scope["layout"]
    assert traj.u.dims == ("time", "sample", "y", "x")
    assert traj.attrs["cfl_name"] == "diffusion number"
    assert round(float(traj.attrs["cfl"]), 2) == 0.18
    assert tuple(tokens.shape) == (44, 64, 16)
    grid = layout.to_grid(scope["values_per_token"])
    assert grid.dims == ("y", "x")
    assert grid.shape == (8, 8)
    np.testing.assert_allclose(grid.values[0, 0], float(tokens[0, 0].mean()), rtol=1e-6)
    assert tuple(scope["out"].attention[0].shape) == (44, 2, 64, 64)
    assert tuple(scope["rows"].attention[0].shape) == (44, 2, 1, 64)


def _bash_block(heading: str) -> str:
    section = README.split(heading, 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert blocks, heading
    return blocks[0]


def test_readme_preprocess_and_train_block_runs_as_written(tmp_path):
    script = _bash_block("### Climate data larger than memory")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "planted.zarr").is_dir()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
