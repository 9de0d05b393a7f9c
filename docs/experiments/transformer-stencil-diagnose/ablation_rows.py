# ruff: noqa
# Scratch runner of 2026-11-27 (s4-adv), kept verbatim: the ablation rows of seeds 5 and 6 in
# docs/experiments/transformer-stencil-ablation-v3.json, one suite._one call (what
# transformer_stencil_suite.run computes for a row) per (variant, equation). Run as:
#   OMP_NUM_THREADS=1 .venv/bin/python <this file> SEED no_linear_init,no_support_init,...
"""Ablation variants of one seed, one (variant, equation) fit at a time, each appended as a
JSON line as soon as it is done (what suite.run computes for that variant, via suite._one)."""
import json, sys, time
from gridformer.experiments.transformer_stencil_suite import FULL, _one

seed = int(sys.argv[1]); variants = sys.argv[2].split(",")
path = f"/tmp/s4adv/runs/variants-seed{seed}.jsonl"
for variant in variants:
    for equation in FULL["equations"]:
        t0 = time.strftime("%H:%M:%S", time.gmtime())
        metrics, _ = _one(equation, variant, seed, FULL, "cpu")
        row = {"variant": variant, "equation": equation, "seed": seed, "started_utc": t0, **metrics}
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
