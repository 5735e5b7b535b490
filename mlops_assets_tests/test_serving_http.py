"""The prediction endpoint over real HTTP (uvicorn on loopback, httpx): byte limit before
parsing, bounded nesting, UTF-8 only, and a 4xx with a message for every malformed body.

The served model is a small real scikit-learn pipeline, set on the holder directly: the
registry side of serving is covered by test_governance.py.
"""
import json
import time

import httpx
import pytest

from mlops_assets.serving.app import create_app
from mlops_assets.serving.holder import ChampionHolder, LoadedModel
from mlops_assets.serving.validation import FeatureSpec, nesting_depth
from mlops_assets_tests.dev_server import serve_app

SPEC = FeatureSpec(numeric=("age", "charges"), categorical=("plan",))
ROW = {"age": 40, "charges": 12.5, "plan": "basic"}
MAX_BYTES = 16384


def _model():
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.integers(18, 80, 60).astype(float), "charges": rng.random(60) * 100,
                      "plan": rng.choice(["basic", "premium"], 60).astype(object)})
    y = (X["age"] > 45).astype(int)
    pre = ColumnTransformer([("num", SimpleImputer(), ["age", "charges"]),
                             ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="?"),
                                                   OneHotEncoder(handle_unknown="ignore")), ["plan"])])
    return make_pipeline(pre, LogisticRegression()).fit(X, y)


@pytest.fixture(scope="module")
def server():
    holder = ChampionHolder("test_model", SPEC, tracking_uri="unused", poll_seconds=3600)
    holder._current = LoadedModel("test_model", "7", _model(), time.time(), 0.0)
    with serve_app(create_app(holder, max_rows=100, poll=False, max_bytes=MAX_BYTES)) as port:
        yield f"http://127.0.0.1:{port}"


def post(base: str, content, headers=None) -> httpx.Response:
    return httpx.post(f"{base}/predict", content=content, headers=headers, timeout=10)


def test_a_valid_request_is_scored(server):
    r = post(server, json.dumps({"rows": [ROW, {**ROW, "age": None, "plan": None}]}).encode())
    assert r.status_code == 200, r.text
    assert r.json()["model_version"] == "7" and len(r.json()["scores"]) == 2


MALFORMED = {
    "empty": b"",
    "not json": b"{rows: oops",
    "trailing garbage": json.dumps({"rows": [ROW]}).encode() + b" x",
    "top-level number": b"5",
    "top-level string": b'"rows"',
    "top-level null": b"null",
    "top-level boolean": b"true",
    "NaN": b'[{"age": NaN, "charges": 1, "plan": "a"}]',
    "Infinity": b'[{"age": Infinity, "charges": 1, "plan": "a"}]',
    "-Infinity": b'[{"age": -Infinity, "charges": 1, "plan": "a"}]',
    "number overflowing a float": b'[{"age": 1e400, "charges": 1, "plan": "a"}]',
    "integer too long": b'[{"age": 1' + b"0" * 4400 + b', "charges": 1, "plan": "a"}]',
    "UTF-16 with BOM": json.dumps([ROW]).encode("utf-16"),
    "UTF-16-LE without BOM": json.dumps([ROW]).encode("utf-16-le"),
    "UTF-32": json.dumps([ROW]).encode("utf-32"),
    "latin-1 bytes": json.dumps([{**ROW, "plan": "caf\u00e9"}], ensure_ascii=False).encode("latin-1"),
    "UTF-8 BOM": b"\xef\xbb\xbf" + json.dumps([ROW]).encode(),
    "deep nesting": b"[" * 3000 + b"]" * 3000,
    "deep nesting unclosed": b"[" * 4000,
    "deep nesting inside a row": json.dumps([{**ROW, "plan": None}]).encode()[:-2] + b', "x": ' + b"[" * 2000 + b"]" * 2000 + b"}]",
    "rows not a list": json.dumps({"rows": ROW}).encode(),
    "rows empty": json.dumps({"rows": []}).encode(),
    "row not an object": json.dumps([ROW, 5]).encode(),
    "missing column": json.dumps([{"age": 1, "plan": "a"}]).encode(),
    "string for a number": json.dumps([{**ROW, "age": "40"}]).encode(),
    "number for a category": json.dumps([{**ROW, "plan": 3}]).encode(),
    "too many rows": json.dumps([ROW] * 101).encode(),
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_every_malformed_body_gets_a_4xx_with_a_message(server, what):
    body = MALFORMED[what]
    assert len(body) <= MAX_BYTES, f"{what} must test parsing, not the byte limit"
    r = post(server, body)
    assert 400 <= r.status_code < 500, (what, r.status_code, r.text)
    assert r.json()["error"], what


@pytest.mark.parametrize("what, fragment", [
    ("UTF-16 with BOM", "not UTF-8"), ("latin-1 bytes", "not UTF-8"), ("deep nesting", "levels deep"),
    ("deep nesting inside a row", "levels deep"), ("top-level number", "got number"), ("NaN", "NaN"),
    ("Infinity", "Infinity"),
])
def test_messages_name_the_problem(server, what, fragment):
    assert fragment in post(server, MALFORMED[what]).json()["error"]


def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    body = json.dumps([ROW] * 500).encode()
    assert len(body) > MAX_BYTES
    r = post(server, body)
    assert r.status_code == 413 and f"{len(body)} bytes exceeds the limit of {MAX_BYTES}" in r.json()["error"]


def test_a_streamed_body_without_length_is_counted_and_refused(server):
    def chunks():  # no Content-Length: httpx sends it chunked
        yield b'{"rows": ['
        for _ in range(500):
            yield json.dumps(ROW).encode() + b","
        yield json.dumps(ROW).encode() + b"]}"

    r = post(server, chunks())
    assert r.status_code == 413 and f"exceeds the limit of {MAX_BYTES} bytes" in r.json()["error"]
    # a small chunked body is read and scored
    small = post(server, iter([b'{"rows": [', json.dumps(ROW).encode(), b"]}"]))
    assert small.status_code == 200, small.text


def test_a_declared_charset_other_than_utf8_is_415(server):
    body = json.dumps([ROW]).encode()
    r = post(server, body, headers={"content-type": "application/json; charset=utf-16"})
    assert r.status_code == 415 and "UTF-8" in r.json()["error"]
    ok = post(server, body, headers={"content-type": "application/json; charset=UTF-8"})
    assert ok.status_code == 200, ok.text


def test_server_still_answers_after_the_refusals(server):
    assert httpx.get(f"{server}/health", timeout=5).json()["status"] == "ok"


@pytest.mark.parametrize("body, depth", [
    (b"", 0), (b"5", 0), (b'{"rows": [{"a": 1}]}', 3), (b'["[[[[", "\\"[[["]', 1), (b"[" * 50, 50),
    (b'"unterminated [[[', 0), (b'"ends with a backslash \\', 0), (b'[{"a": "]]]}}}"}]', 2),
])
def test_nesting_depth_ignores_brackets_in_strings(body, depth):
    assert nesting_depth(body) == depth

