"""Run every benchmark and print its figures."""

from bench import runbook_search


def main() -> None:
    runbook_search.main()


if __name__ == "__main__":
    main()
