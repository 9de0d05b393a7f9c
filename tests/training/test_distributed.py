"""fit under torch.distributed: 2 gloo processes on CPU (what torchrun sets up)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_run_keeps_replicas_in_sync(tmp_path):
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tmp_path)], env=env,
                                      stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["param"] == r1["param"]  # DDP averaged the gradients: identical replicas
    assert r0["loss"] == r1["loss"]  # logged loss is the mean over ranks
    assert len(r0["loss"]) == 3


@pytest.mark.slow
def test_train_command_under_torchrun(tmp_path):
    """``torchrun -m gridformer train``: two gloo ranks, one set of files, written by rank 0."""
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({
        "data": {"solver": {"equation": "heat", "params": {"diffusivity": 0.1}, "grid": [8, 8],
                            "steps": 4, "samples": 2}},
        "model": {"preset": "tiny"},
        "training": {"steps": 2, "batch_size": 4, "device": "cpu"},
    }))
    out = tmp_path / "out"
    # --standalone: torchrun picks a free rendezvous port itself (no port race with other tests)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "gridformer", "train", "--config", str(config),
           "--out", str(out), "--json", str(tmp_path / "r.json")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 2 steps") == 1  # only rank 0 reports and writes
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "history.json"]
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["metrics"]["steps"] == 2
