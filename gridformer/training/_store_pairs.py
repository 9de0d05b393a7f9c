"""``data: {store: path.zarr}``: next-state pairs read from a token store, split by time.

The pairs are ``(step t, step t + lead)`` of every stored variable, in time order; the last
``val_fraction`` of them validate. They stay in the store (read block by block through
:class:`gridformer.datasets.TokenStoreDataset`), so ``fit`` (and each ``torchrun`` process,
through its ``DistributedSampler``) draws batches without loading the data.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_store_pairs"]

_NOT_FOR_STORES = ("time_dim", "periodic")  # fixed when the store was written


def _split(store: Any, spec: dict[str, Any], lead: int) -> tuple[int, int]:
    """Training and validation pair counts; refuse statistics that saw validation steps."""
    n_starts = store.n_time - lead
    if n_starts < 1:
        msg = f"lead={lead} needs 1 <= lead < {store.n_time} (the steps in the store)"
        raise ValueError(msg)
    fraction = float(spec.get("val_fraction", 0.0))
    n_val = round(fraction * n_starts)
    n_train = n_starts - n_val
    if n_train < 1:
        msg = f"val_fraction={spec.get('val_fraction')} leaves no training pairs"
        raise ValueError(msg)
    s0, s1 = store.settings["stats_steps"]
    touches = store.settings["normalize"] or store.settings["anomalies"] is not None
    if n_val and touches and s1 > n_train:
        first_val = str(store.times.values[n_train])
        msg = (f"the store's statistics period {store.settings['stats_time']} (steps {s0}.."
               f"{s1 - 1}) overlaps the validation steps (from step {n_train}, time "
               f"{first_val}, with val_fraction={fraction}); write the store with a statistics "
               f"period that ends before {first_val} (--stats-time) so validation data never "
               f"leak into training")
        raise ValueError(msg)
    return n_train, n_val


def load_store_pairs(spec: dict[str, Any]) -> Any:
    """:class:`~gridformer.training.data.PairData` over the token store ``spec["store"]``."""
    from gridformer.datasets import TokenStoreDataset, open_token_store
    from gridformer.tokenize import PatchTokenizer
    from gridformer.training.data import PairData
    from gridformer.training.predictor import data_metadata

    given = [k for k in _NOT_FOR_STORES if k in spec]
    if given:
        msg = f"data keys {given} do not apply to a token store (fixed when it was written)"
        raise ValueError(msg)
    expect = {k: spec[k] for k in ("variables", "patch_size", "normalize") if k in spec}
    store = open_token_store(spec["store"], expect=expect)
    lead = int(spec.get("lead", 1))
    n_train, n_val = _split(store, spec, lead)
    train = TokenStoreDataset(store, lead=lead, frames=slice(0, n_train + lead))
    val = TokenStoreDataset(store, lead=lead, frames=slice(n_train, None)) if n_val else None
    layout = train.with_valid_rows()
    settings = store.settings
    tokenizer = PatchTokenizer(settings["patch_size"], pad=settings["pad"],
                               fill_value=settings["fill_value"])
    metadata = data_metadata(layout=store.layout, tokenizer=tokenizer,
                             variables=store.variables, lead=lead, time_dim="time",
                             normalization=store.normalization())
    # anomalies: the model works on departures from the stored climatology
    metadata["store"] = {"path": str(store.path), "format_version": store.meta["format_version"],
                         "gridformer_version": store.meta["gridformer_version"],
                         "settings": settings}
    geo = store.meta["layout"]
    source = {"store": str(store.path), "variables": store.variables,
              "dims": {"time": store.n_time, **dict(zip(geo["spatial_dims"], geo["grid_shape"],
                                                        strict=True))},
              "pairs": n_train + n_val, "train_pairs": n_train, "val_pairs": n_val,
              "tokens": store.n_tokens, "features": store.n_features,
              "anomalies": settings["anomalies"], "normalization": store.meta["statistics"]}
    return PairData(train, val, layout, val.with_valid_rows() if val else layout, source,
                    metadata)
