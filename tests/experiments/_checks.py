"""Checks every experiment test shares: the report names the verdict and every metric, and
each metric is a finite ``{"mean", "sd", "values"}`` summary over the two test seeds."""

from __future__ import annotations

import numpy as np

from gridformer.experiments import write_report


def check_report(result, folder):
    """The figure is drawn and the report names the verdict and every metric."""
    png, md = write_report(result, folder)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = md.read_text()
    assert f"**Verdict ({result.verdict.outcome}).** {result.verdict.text}" in text
    for key in result.metrics:
        assert f"| `{key}` |" in text


def check_summaries(result, keys, *, ordered=False):
    """Exactly ``keys`` (in that order with ``ordered``), each summarised over the two seeds,
    every value finite."""
    assert (list(result.metrics) == list(keys) if ordered
            else set(result.metrics) == set(keys))
    for key, s in result.metrics.items():
        assert set(s) == {"mean", "sd", "values"}, key
        assert len(s["values"]) == 2, key
        assert np.all(np.isfinite(np.ravel(np.asarray(s["values"], dtype=float)))), key
    assert result.verdict.outcome in ("holds", "does not hold", "inconclusive")
