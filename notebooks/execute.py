"""Execute the example notebooks and store them with their outputs (``make notebooks``).

Each notebook runs in a fresh kernel of this interpreter (so the environment's gridformer is
used, whatever kernels the user has registered), in a temporary working folder so that files the
notebook writes do not land in the repository. The result replaces the notebook atomically; its
kernelspec is set to ``gridformer``, the kernel ``make kernel`` registers. The test suite
(``tests/test_notebooks.py``) re-executes every notebook and checks that the stored copy has
outputs and stays small.

    .venv/bin/python notebooks/execute.py [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

from gridformer._io import atomic_path

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "gridformer", "display_name": "Python (gridformer)", "language": "python"}


def _this_interpreter_kernel(folder: Path) -> str:
    """Register a kernelspec running ``sys.executable`` under ``folder``; return its name.

    A user-level ``python3`` kernelspec may point at another Python; this one cannot.
    """
    spec = folder / "kernels" / "gridformer-execute"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gridformer (execute.py)", "language": "python",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))
    # figures inline (stored in the notebook), even where MPLBACKEND=Agg is set (CI)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    return spec.name


def execute(path: Path, *, timeout: int = 1800) -> float:
    """Execute ``path`` in place (outputs stored); returns the wall time in seconds."""
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        kernel = _this_interpreter_kernel(Path(workdir) / "jupyter")
        client = nbclient.NotebookClient(
            notebook, kernel_name=kernel, timeout=timeout,
            resources={"metadata": {"path": workdir}},
        )
        client.execute()
    seconds = time.perf_counter() - started
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    with atomic_path(path) as tmp:
        nbformat.write(notebook, tmp)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to execute (default: every notebooks/*.ipynb)")
    args = parser.parse_args()
    for path in args.notebooks or sorted(HERE.glob("*.ipynb")):
        seconds = execute(path)
        print(f"{path}: executed in {seconds:.0f} s, {path.stat().st_size / 1e3:.0f} kB",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
