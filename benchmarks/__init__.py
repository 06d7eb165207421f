"""Benchmarks of the simulation (run `python -m benchmarks.bench`)."""
