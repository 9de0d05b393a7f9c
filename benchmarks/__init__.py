"""Side-by-side benchmarks: gridformer against the tools users would pick instead.

``python -m benchmarks --json out.json`` runs every module of :data:`MODULES` and reports each
case as gridformer's value, the peer's value and their ratio, measured in the same process run,
with the machine's thread settings and load. See ``benchmarks/RESULTS.md`` for the latest
numbers.
"""

MODULES = ("bench_solvers", "bench_tokenizer", "bench_training", "bench_data")
