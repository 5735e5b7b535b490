"""Component types of this project (registered for `dg` in pyproject.toml [tool.dg])."""
from mlops_assets.components.use_case import UseCase

__all__ = ["UseCase"]
