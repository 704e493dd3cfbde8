"""`python -m bench`: run every benchmark and print its figures."""

from __future__ import annotations

from bench import rules_classify

BENCHMARKS = (rules_classify.main,)


def main() -> None:
    for benchmark in BENCHMARKS:
        benchmark()


if __name__ == "__main__":
    main()
