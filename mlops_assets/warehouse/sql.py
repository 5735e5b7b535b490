"""Identifiers that reach SQL: the one place that quotes them.

Column and table names come from landing-file headers and use-case files, i.e. from users.
Every identifier pasted into a DuckDB statement goes through `ident` (or `qualified` for
schema.table), which doubles embedded quotes so that a name can never end the identifier and
start a statement. `is_plain` is the stricter rule the landing zone and use cases enforce, so
that names stay portable to other warehouses and readable in error messages.
"""
from __future__ import annotations

import re

PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def ident(name: str) -> str:
    """`name` as a double-quoted SQL identifier, safe for any string."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"not a usable SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str) -> str:
    """`schema.table` (or `table`) with each part quoted."""
    return ".".join(ident(part) for part in name.split("."))


def is_plain(name: str) -> bool:
    """Letters, digits and '_' only, not starting with a digit."""
    return isinstance(name, str) and PLAIN_IDENTIFIER.fullmatch(name) is not None


def literal(value: str) -> str:
    """A string as a single-quoted SQL literal (for places where parameters are not allowed,
    e.g. the file path inside read_csv)."""
    return "'" + str(value).replace("'", "''") + "'"
