"""The README's Interop example runs as written, and says what it shows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _interop_python() -> str:
    section = README.split("### Interop", 1)[1]
    section = section.split("\n## ", 1)[0].split("\n### ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_interop_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(_interop_python(), "README.md (Interop)", "exec"), scope)
    traj, errors = scope["traj"], scope["errors"]
    # what the comments say: both files read back, PDEBench's nRMSE of 1.01 u is 0.01
    assert scope["well"]["u"].dims == ("sample", "time", "y", "x")
    assert scope["pde"].attrs["pdebench_layout"] == "samples"
    assert (tmp_path / "py-out" / "well" / "train" / "heat.hdf5").is_file()
    np.testing.assert_allclose(errors["pdebench_nrmse"].values, 0.01, rtol=1e-12)
    np.testing.assert_allclose(errors["rel_l2"].values, 0.01, rtol=1e-12)
    assert scope["tokens"].shape == (traj.sizes["time"] * 4, 64, 16)
    # the planted teleconnection shows up in the correlation map's target region
    r, tele = scope["r"], scope["tele"]
    assert float(r.where(tele.target_mask).mean()) > 0.5
    assert abs(float(r.where(~tele.target_mask).mean())) < 0.1
    scope["well"].close()
    scope["pde"].close()
