"""The CUDA bias probe's plumbing on the CPU: every CPU variant runs and matches the reference."""

import json

from benchmarks.gpu_bias_probe import main, probe


def test_cpu_variants_agree_with_the_float32_reference():
    result = probe("cpu", repeats=1, batch=2, heads=2, side=20,
                   head_dim=8)  # offsets up to 10: clipped at 8
    rows = {r["variant"]: r for r in result["rows"]}
    assert set(rows) == {"flash, no bias", "sdpa + bias (default dispatch)",
                         "sdpa + bias, math", "explicit", "sdpa + bias, presorted table gradient",
                         "sdpa + bias, unclipped two-step gather", "sdpa + bias leaf",
                         "sdpa + frozen bias", "maps: explicit softmax, forward + backward",
                         "maps: fused output + weights beside"}
    for name in ("sdpa + bias (default dispatch)", "sdpa + bias, math", "explicit",
                 "sdpa + bias, presorted table gradient", "sdpa + bias, unclipped two-step gather",
                 "maps: explicit softmax, forward + backward",
                 "maps: fused output + weights beside"):
        errors = rows[name]["max_abs_error"]
        assert set(errors) == {"out", "q", "k", "v", "table"}
        assert max(errors.values()) < 1e-5, (name, errors)  # the table gradient included
        assert rows[name]["ms_median"] > 0
    for name in ("sdpa + bias leaf", "sdpa + frozen bias"):  # no table gradient by design
        errors = rows[name]["max_abs_error"]
        assert errors.pop("table") is None
        assert max(errors.values()) < 1e-5, (name, errors)
    assert "max_abs_error" not in rows["flash, no bias"]


def test_main_writes_json_and_refuses_cuda_without_a_gpu(tmp_path, capsys):
    import torch

    if not torch.cuda.is_available():
        assert main(["--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    out = tmp_path / "probe.json"
    assert main(["--device", "cpu", "--repeats", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["shape"]["tokens"] == 64
