"""Benchmarks of runbook-router, run by `make bench` (`python -m bench`); each prints figures."""
