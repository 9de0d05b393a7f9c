"""Runnable experiments that turn the reference text's claims into checks."""

__all__: list[str] = []
