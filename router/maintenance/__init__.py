"""Maintenance windows: Alertmanager-style time intervals (`intervals`), which window hides an
alert and until when (`windows`), and making and ending windows at run time (`service`)."""
