"""Benchmarks: `make bench` runs the `main()` of every `bench/bench_*.py` module."""
