"""Benchmarks of runbook-router; `make bench` (python -m bench) runs them and prints the figures."""
