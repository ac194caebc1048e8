"""Benchmarks with baselines: ``python -m bench [--quick] [--only NAME]``; see README.md."""
