# ruff: noqa
# Scratch script of 2026-11-27 (s4-adv), kept verbatim: it produced docs/experiments/transformer-stencil-tuning-v3.jsonl
# Run from the repository root as: OMP_NUM_THREADS=1 .venv/bin/python <this file> EQUATION SEED TAG 'KW'
# (KW: Recipe fields, plus zero_q / zero_mlp / n_train). It ran at commit 7ad7d2e, before
# Recipe.linear_init existed; with today's code the row "recipe" needs KW '{"linear_init": false}',
# and "zeroqmlp" ('{"zero_q": 1, "zero_mlp": 1}') is the final recipe (the zeroing is repeated).
# It appends to /tmp/s4adv/diag.jsonl and saves the model to /tmp/s4adv/ (create that folder).
"""Diagnose the advection rollout error of the transformer-stencil recipe (scratch)."""
import dataclasses, json, sys, time
import numpy as np, torch
from gridformer import solvers
from gridformer.experiments.stencil_data import fd_trajectory, random_fields
from gridformer.experiments.transformer_stencil import (RECIPE, build_recipe_model,
    stencil_metrics, train_recipe, training_pairs)
from gridformer.experiments.transformer_stencil_suite import _PARAMS
from gridformer.analysis import effective_stencil, rollout

def run(equation, seed, tag, kw, n_train=8, grid=(16, 16), dt=0.4, steps_roll=100, save=None):
    params = _PARAMS[equation]; spacing = (1.0, 1.0)
    recipe = dataclasses.replace(RECIPE, **{k: v for k, v in kw.items() if k in RECIPE.__dataclass_fields__})
    inputs, targets = training_pairs(equation, grid, n_train=kw.get("n_train", n_train), dt=dt,
                                     params=params, recipe=recipe, seed=seed)
    test = random_fields(4, grid, seed=seed + 1, kind="smooth")
    ref = fd_trajectory(equation, test, steps=steps_roll, dt=dt, spacing=spacing, params=params)
    fd = solvers.update_stencil(equation, dt=dt, spacing=spacing, **params).reset_coords(drop=True)
    model = build_recipe_model(recipe, grid, seed=seed, fd_stencil=fd)
    with torch.no_grad():
        for blk in model.net.blocks:
            if kw.get("zero_q"):
                blk.attn.q.weight.zero_(); blk.attn.q.bias.zero_()
            if kw.get("zero_mlp"):
                blk.mlp.out.weight.zero_(); blk.mlp.out.bias.zero_()
    fit = train_recipe(model, recipe, inputs, targets, seed=seed, fd_stencil=fd)
    m = stencil_metrics(model, fd, test, ref, seed=seed)
    out = dict(m, train_loss=fit["loss"], cpu=fit["cpu_seconds"], tag=tag, equation=equation,
               seed=seed, kw=kw)
    L = fit["losses"]; out["loss_at"] = {k: L[k - 1] for k in (500, 1000, 1500, 1800) if k <= len(L)}
    # diagnostics
    refv = ref.values  # (T+1, S, ny, nx)
    traj = rollout(model, test, steps_roll, dtype=model.dtype)
    tv = np.asarray(traj.values if hasattr(traj, "values") else traj)
    if tv.shape[0] != refv.shape[0]:
        tv = np.moveaxis(tv, 1, 0)
    def rel(a, b):
        return float(np.sqrt(((a - b) ** 2).sum()) / np.sqrt((b ** 2).sum()))
    out["curve"] = {t: rel(tv[t], refv[t]) for t in (1, 10, 25, 50, 100)}
    # linear rollout with the model's Jacobian stencil (averaged over test states)
    J = effective_stencil(model, test, n_positions=64, seed=seed)
    w = {(int(a), int(b)): float(J.sel(dy=a, dx=b)) for a in J.dy.values for b in J.dx.values}
    u = test.copy(); lin = [u]
    for _ in range(steps_roll):
        u = sum(c * np.roll(u, shift=(-a, -b), axis=(1, 2)) for (a, b), c in w.items()); lin.append(u)
    lin = np.array(lin)
    out["lin_rollout_rel_l2"] = rel(lin[-1], refv[-1])
    out["model_vs_lin"] = rel(tv[-1], lin[-1])
    out["J_sum_minus_1"] = float(sum(w.values()) - 1)
    out["J_spread_max"] = float(np.asarray(J["spread"]).max()) if "spread" in J.coords else None
    # one-step error on the reference trajectory states
    with torch.no_grad():
        X = torch.as_tensor(refv[:-1].reshape(-1, *grid), dtype=model.dtype)
        P = model(X).double().numpy().reshape(refv[:-1].shape)
    inc = refv[1:] - refv[:-1]
    out["onestep_rel_to_inc"] = float(np.sqrt(((P - refv[1:]) ** 2).mean() / (inc ** 2).mean()))
    # first moments of J - FD (consistency): sum, first moment (velocity), second moment
    fdw = {(int(a), int(b)): float(fd.sel(dy=a, dx=b)) for a in fd.dy.values for b in fd.dx.values}
    d = {k: w.get(k, 0.0) - fdw.get(k, 0.0) for k in set(w) | set(fdw)}
    out["dmom1"] = [float(sum(v * k[0] for k, v in d.items())), float(sum(v * k[1] for k, v in d.items()))]
    out["dmom2"] = float(sum(v * (k[0] ** 2 + k[1] ** 2) for k, v in d.items()))
    out["dJ_l1"] = float(sum(abs(v) for v in d.values()))
    print(json.dumps(out), flush=True)
    with open("/tmp/s4adv/diag.jsonl", "a") as f:
        f.write(json.dumps(out) + "\n")
    if save:
        torch.save(model.state_dict(), save)
    return out

if __name__ == "__main__":
    eq, seed, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    kw = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    run(eq, seed, tag, kw, save=f"/tmp/s4adv/{tag}_{eq}_{seed}.pt")
