"""What every hand-off reader shares: its error, and metadata read as plain values."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

class HandoffError(RuntimeError):
    """An upstream value a reader needs is missing or malformed."""


def _values(metadata: Mapping[str, Any]) -> dict[str, Any]:
    # Accept both raw event metadata (MetadataValue objects) and plain dicts.
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _require(values: Mapping[str, Any], what: str, *keys: str) -> None:
    missing = [k for k in keys if k not in values]
    if missing:
        raise HandoffError(f"{what} lacks metadata {missing} (has {sorted(values)}); "
                           "materialize it again with the current code")



def _table(columns, rows: list[dict[str, Any]]):
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])
    return dg.MetadataValue.table(records=[dg.TableRecord(r) for r in rows], schema=schema)
