# ruff: noqa
# Scratch script of 2026-11-27 (s4-adv), kept verbatim: it produced docs/experiments/transformer-stencil-tuning-v3.jsonl
# Run as: .venv/bin/python <this file> advection 1 /tmp/s4adv/recipe_advection_1.pt (the model
# diag.py saved for its 'recipe' row); it printed the 'probe' row of the jsonl.
import dataclasses, sys, json
import numpy as np, torch
from gridformer import solvers
from gridformer.experiments.stencil_data import fd_trajectory, random_fields, fd_pairs
from gridformer.experiments.transformer_stencil import RECIPE, build_recipe_model, training_pairs
from gridformer.experiments.transformer_stencil_suite import _PARAMS
eq, seed, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kw = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
grid = (16, 16); params = _PARAMS[eq]; sp = (1.0, 1.0)
recipe = dataclasses.replace(RECIPE, **kw)
fd = solvers.update_stencil(eq, dt=0.4, spacing=sp, **params).reset_coords(drop=True)
model = build_recipe_model(recipe, grid, seed=seed, fd_stencil=fd)
model.load_state_dict(torch.load(path, weights_only=True)); model.eval()
def err(u):
    x, y = fd_pairs(eq, u, dt=0.4, spacing=sp, params=params)
    with torch.no_grad():
        p = model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    inc = ((y - x) ** 2).mean((1, 2)); e = ((p - y) ** 2).mean((1, 2))
    return float(np.sqrt((e / inc).mean()))
xi, yi = training_pairs(eq, grid, n_train=8, dt=0.4, params=params, recipe=recipe, seed=seed)
print("train broadband", err(xi[:4]), "train smooth", err(xi[4:]))
print("test smooth (seed+1)", err(random_fields(4, grid, seed=seed + 1, kind="smooth")))
print("new smooth x64", err(random_fields(64, grid, seed=999, kind="smooth")))
print("new broadband x64", err(random_fields(64, grid, seed=998)))
u = random_fields(64, grid, seed=999, kind="smooth")
for a in (0.5, 2.0):
    print("smooth scaled", a, err(a * u))
for c in (-1.0, 1.0):
    print("smooth + const", c, err(u - u.mean((1, 2), keepdims=True) + c))
print("smooth zero-mean", err(u - u.mean((1, 2), keepdims=True)))
