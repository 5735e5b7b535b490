"""Validation of a prediction request body: pure, so every rejection is unit-tested.

Accepted bodies: ``{"rows": [{...}, ...]}`` or a bare list ``[{...}, ...]``; each row maps
every feature of the use case to a JSON number (numeric features) or string (categorical
features); ``null`` means missing and is imputed like in training. Other keys are ignored.
A server with a features model also takes landing-shaped rows (the columns of a landing file)
and computes their features with the model's SQL (features.py).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

MAX_ROWS_DEFAULT = 10_000
# A full request of MAX_ROWS_DEFAULT rows of a few dozen features is well under this; the
# limit is checked before a byte is parsed (Content-Length, then bytes counted while reading).
MAX_BYTES_DEFAULT = 8 * 1024 * 1024
# {"rows": [{...}]} is 3 levels deep; anything near the limit is not a request, and the bound
# keeps the JSON parser from recursing until RecursionError.
MAX_DEPTH = 32

# A JSON string, closed or running to the end of the body. Possessive, and always matching at
# a quote, so that one left-to-right pass over any body is linear.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = bytes.maketrans(b"[{]}", bytes([1, 1, 255, 255]))  # 255 is -1 as int8


class PayloadError(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FeatureSpec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


def _reject_constant(name: str):
    raise PayloadError(400, f"body is not valid JSON: {name} is not a JSON number")


def parse_rows(body: bytes, spec: FeatureSpec, max_rows: int = MAX_ROWS_DEFAULT) -> dict[str, list]:
    """Columns (feature -> list of values, in spec order) of a valid body; raises PayloadError
    with a 4xx status and a message naming the problem otherwise."""
    return feature_columns(parse_payload(body, max_rows), spec)


def has_features(rows: list, spec: FeatureSpec) -> bool:
    """True when every row is an object with every feature column (scored as it is)."""
    return all(isinstance(row, dict) and all(c in row for c in spec.columns) for row in rows)


def parse_payload(body: bytes, max_rows: int = MAX_ROWS_DEFAULT) -> list:
    """The rows of a valid body (not yet checked one by one); PayloadError otherwise."""
    if not body.strip():
        raise PayloadError(400, 'empty body: send JSON {"rows": [{feature: value, ...}, ...]}')
    try:
        # Decoded here, strictly: json.loads(bytes) would also guess UTF-16 and UTF-32.
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(400, f"body is not UTF-8 (JSON requests must be UTF-8): byte {exc.start} "
                                f"is {body[exc.start:exc.start + 1]!r}") from exc
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise PayloadError(400, f"body nests arrays/objects {depth} levels deep (limit {MAX_DEPTH}): "
                                'send {"rows": [{feature: value, ...}, ...]}')
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:  # backstop: nesting_depth should have refused it
        raise PayloadError(400, "body nests arrays/objects too deeply") from exc
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise PayloadError(400, f"body is not usable JSON: {exc}") from exc
    if not isinstance(payload, (dict, list)):
        raise PayloadError(422, f'expected an object {{"rows": [...]}} or a list of rows, got {_json_type(payload)}')
    if isinstance(payload, dict):
        if "rows" not in payload:
            raise PayloadError(422, f'expected an object with a "rows" list, got keys {sorted(payload)[:10]}')
        rows = payload["rows"]
    else:
        rows = payload
    if not isinstance(rows, list):
        raise PayloadError(422, f'"rows" must be a list of objects, got {_json_type(rows)}')
    if not rows:
        raise PayloadError(422, '"rows" is empty: send at least one row')
    if len(rows) > max_rows:
        raise PayloadError(413, f"{len(rows)} rows exceed the limit of {max_rows} per request")
    return rows


def feature_columns(rows: list, spec: FeatureSpec) -> dict[str, list]:
    """Columns (feature -> values, in spec order) of rows that carry every feature column."""
    columns: dict[str, list] = {c: [] for c in spec.columns}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise PayloadError(422, f"row {i} must be an object of feature values, got {_json_type(row)}")
        missing = [c for c in spec.columns if c not in row]
        if missing:
            raise PayloadError(422, f"row {i} is missing column(s) {missing}")
        for c in spec.numeric:
            v = row[c]
            # bool is an int in Python but not a number a client means to send.
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise PayloadError(422, f"row {i} column {c!r} must be a number or null, got {_json_type(v)} {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                raise PayloadError(422, f"row {i} column {c!r} must be finite, got {v!r}")
            try:
                columns[c].append(None if v is None else float(v))
            except OverflowError as exc:
                raise PayloadError(422, f"row {i} column {c!r} is out of range for a float: {exc}") from exc
        for c in spec.categorical:
            v = row[c]
            if v is not None and not isinstance(v, str):
                raise PayloadError(422, f"row {i} column {c!r} must be a string or null, got {_json_type(v)} {v!r}")
            columns[c].append(v)
    return columns


def nesting_depth(body: bytes) -> int:
    """Deepest nesting of arrays/objects in ``body``, brackets inside strings not counted. Runs
    in C loops (regex, translate, numpy) so a body at the byte limit costs milliseconds."""
    import numpy as np

    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET).translate(_STEP)
    if not brackets:
        return 0
    return int(np.cumsum(np.frombuffer(brackets, dtype=np.int8), dtype=np.int64).max())


def _json_type(v) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(type(v), type(v).__name__)
