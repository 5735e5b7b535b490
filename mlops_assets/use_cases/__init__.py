"""Use cases are data: each is a `defs.yaml` of type mlops_assets.components.UseCase under
mlops_assets/defs/ (or a file in a folder listed in MLOPS_USE_CASE_DIRS). See config.py for
the fields and discovery.py for loading and per-environment overrides."""
