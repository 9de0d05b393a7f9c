"""Progress bars: on in terminals and Jupyter kernels, off in CI logs and pipes."""

from __future__ import annotations

import io
import json
import sys
import types

import pytest

from gridformer import _progress
from gridformer._progress import in_jupyter_kernel, progress, progress_bar, progress_enabled


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def use_terminal(monkeypatch) -> Terminal:
    """Make stderr a terminal. Called in the test body: pytest's output capture replaces
    ``sys.stderr`` again between a fixture's setup and the test call."""
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv("CI", raising=False)
    return stream


@pytest.fixture
def kernel(monkeypatch):
    """Pretend to run in an IPython kernel: a shell object with a ``kernel`` attribute."""
    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))


def test_terminal_shows_a_bar(monkeypatch):
    terminal = use_terminal(monkeypatch)
    assert list(progress(range(5), desc="solve heat")) == [0, 1, 2, 3, 4]
    assert "solve heat:   0%|" in terminal.getvalue()
    assert "0/5 [" in terminal.getvalue()


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_ci_turns_bars_off_even_on_a_terminal(monkeypatch, value):
    terminal = use_terminal(monkeypatch)
    monkeypatch.setenv("CI", value)
    assert not progress_enabled()
    assert list(progress(range(5), desc="solve heat")) == [0, 1, 2, 3, 4]
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_ci_set_to_false_leaves_bars_on(monkeypatch, value):
    use_terminal(monkeypatch)
    monkeypatch.setenv("CI", value)
    assert progress_enabled()


def test_pipe_outside_jupyter_is_off(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_jupyter_kernel()
    assert not progress_enabled()


def test_jupyter_kernel_is_on_although_stderr_is_no_terminal(monkeypatch, kernel):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert in_jupyter_kernel()
    assert progress_enabled()
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()


def test_terminal_ipython_is_no_kernel(monkeypatch):
    shell = types.SimpleNamespace()  # TerminalInteractiveShell has no .kernel
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert not in_jupyter_kernel()


def test_kernel_without_ipywidgets_gets_the_text_bar(monkeypatch, kernel):
    from tqdm import tqdm

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    assert _progress._tqdm_class() is tqdm


def test_enabled_overrides_the_default(monkeypatch):
    terminal = use_terminal(monkeypatch)
    monkeypatch.setenv("CI", "true")
    list(progress(range(3), desc="forced", enabled=True))
    assert "forced:   0%|" in terminal.getvalue()
    monkeypatch.delenv("CI")
    terminal.seek(0)
    terminal.truncate()
    list(progress(range(3), desc="off", enabled=False))
    assert terminal.getvalue() == ""


def test_progress_bar_by_hand(monkeypatch):
    terminal = use_terminal(monkeypatch)
    with progress_bar(total=4, initial=1, desc="train") as bar:
        bar.update(3)
        bar.set_postfix(loss=0.5)
    assert "train: 100%|" in terminal.getvalue()  # set_postfix redraws: 1 + 3 of 4 done
    assert "4/4 [" in terminal.getvalue()
    assert "loss=0.5" in terminal.getvalue()


def test_disabled_progress_bar_accepts_the_same_calls(monkeypatch):
    terminal = use_terminal(monkeypatch)
    with progress_bar(total=4, desc="train", enabled=False) as bar:
        bar.update(3)
        bar.set_postfix(loss=0.5)
    bar.close()
    assert terminal.getvalue() == ""


def test_cli_common_reexports_the_same_function():
    from gridformer.cli import common

    assert common.progress is progress


@pytest.mark.slow
def test_bar_shows_in_a_real_jupyter_kernel_and_not_under_ci(tmp_path, monkeypatch):
    import nbclient
    import nbformat  # dev dependency: a missing one must fail, not skip
    spec = tmp_path / "kernels" / "gridformer-test"
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gridformer tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    loop = "from gridformer._progress import progress\n_ = list(progress(range(7), desc='{}'))"
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(loop.format("in kernel")),
        nbformat.v4.new_code_cell("import os\nos.environ['CI'] = 'true'\n" + loop.format("ci")),
    ])
    nbclient.NotebookClient(notebook, kernel_name="gridformer-test", timeout=120).execute()
    first, second = (
        "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
        for cell in notebook.cells)
    assert "in kernel:   0%|" in first
    assert "0/7 [" in first
    assert second == ""
