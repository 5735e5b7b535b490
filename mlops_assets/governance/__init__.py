"""Model governance: registry conventions (registry.py) and the champion/challenger gates and
promotion rule (rules.py)."""
