"""Synthetic data for demos, tests and benchmarks: never real residents' details."""
