"""Benchmarks (``python -m smc.bench...`` or the scripts in bench/). Not part of the tests."""
