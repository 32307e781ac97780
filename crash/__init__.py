"""Crash-safety harness for paper-digest (run by hand: python -m crash.harness)."""
