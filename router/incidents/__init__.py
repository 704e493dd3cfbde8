"""Incidents: the escalation state machine, its time arithmetic, and the service that applies it.

escalation.py  pure functions of (progress, policy, now): start, when_due, acknowledge,
               resolve, raise_severity; the plan `route` shows is these run on a virtual clock
schedule.py    durations and business hours
service.py     IncidentService: one transaction per webhook, escalation pass, acknowledgement
               or resolution, against the store (runtime)
"""
