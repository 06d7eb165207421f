"""Experiments built on the model: evaluation, dropout, refits, stress tests, sweeps, the reduced model."""
