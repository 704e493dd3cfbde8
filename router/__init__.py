"""runbook-router: routes alerts to the right people with the right runbook section attached."""

__version__ = "0.1.0"
