"""`python -m router` is the same as the `runbook-router` command."""

from router.cli import main

raise SystemExit(main())
