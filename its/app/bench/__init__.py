"""Benchmarks: every figure is a ratio against a bare baseline measured in the same run."""
