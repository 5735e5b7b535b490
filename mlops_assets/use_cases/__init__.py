"""Use cases are data: each YAML file here (or in a folder listed in MLOPS_USE_CASE_DIRS)
describes one model's chain of assets. See config.py for the fields."""
