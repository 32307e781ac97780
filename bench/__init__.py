"""Benchmarks for paper-digest: ``python -m bench`` (``--quick`` for tiny sizes)."""
