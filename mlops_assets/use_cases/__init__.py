"""Use cases are data: each is a `defs.yaml` of type mlops_assets.components.UseCase under
mlops_assets/defs/ (or a file in a folder listed in MLOPS_USE_CASE_DIRS). config.py is the schema
(every field, once), loader.py the one loader (templates, per-environment overrides), fields.py
the generated field table (docs/use-case-fields.md)."""
