"""Alerts on failed checks and failed runs: sink.py (file + webhook); sensors in defs/alerts/."""
