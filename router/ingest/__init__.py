"""Ingest: webhook bodies (Alertmanager v4, Grafana unified and legacy) parsed into `models.Alert`.

    payloads.py  pydantic models of each body, parsed into alerts; PayloadError names the field

Pure: no I/O. The HTTP receiver that calls it is `router/api/http.py`.
"""
