"""Benchmarks and the season rehearsal (run as scripts; see README)."""
