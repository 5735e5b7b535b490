"""Request validation of the prediction endpoint: every rejection carries a 4xx and names the problem."""
import json

import pytest

from mlops_assets.serving.holder import frame_from_columns
from mlops_assets.serving.validation import FeatureSpec, PayloadError, parse_rows

SPEC = FeatureSpec(numeric=("age", "charges"), categorical=("plan",))
ROW = {"age": 40, "charges": 12.5, "plan": "basic"}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_rows_object_and_bare_list_give_columns_in_spec_order():
    expected = {"age": [40.0, None], "charges": [12.5, 3.0], "plan": ["basic", None]}
    second = {"plan": None, "charges": 3, "age": None, "customer_id": "C1"}  # extra keys are ignored
    assert parse_rows(body({"rows": [ROW, second]}), SPEC) == expected
    assert parse_rows(body([ROW, second]), SPEC) == expected


@pytest.mark.parametrize("raw, status, fragment", [
    (b"", 400, "empty body"),
    (b"   ", 400, "empty body"),
    (b"{rows: 1}", 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not"),
    (b'[{"age": NaN, "charges": 1, "plan": "a"}]', 400, "NaN is not a JSON number"),
    (body({"data": [ROW]}), 422, 'with a "rows" list'),
    (body({"rows": ROW}), 422, '"rows" must be a list'),
    (body({"rows": []}), 422, '"rows" is empty'),
    (body([ROW, 5]), 422, "row 1 must be an object"),
    (body([{"age": 1, "plan": "a"}]), 422, "row 0 is missing column(s) ['charges']"),
    (body([{**ROW, "age": "40"}]), 422, "row 0 column 'age' must be a number or null, got string '40'"),
    (body([{**ROW, "age": True}]), 422, "got boolean True"),
    (body([{**ROW, "plan": 1}]), 422, "column 'plan' must be a string or null, got number 1"),
    (b'[{"age": 1e400, "charges": 1, "plan": "a"}]', 422, "must be finite"),
    (json.dumps([ROW]).encode("utf-16"), 400, "not UTF-8"),  # json.loads(bytes) would accept it
    (json.dumps([ROW]).encode("utf-16-le"), 400, "not valid JSON"),
    (b"[" * 5000 + b"]" * 5000, 400, "5000 levels deep"),  # was RecursionError, a 500
    (b"7", 422, "got number"),
    (b"null", 422, "got null"),
])
def test_malformed_requests_are_rejected_with_a_4xx_naming_the_problem(raw, status, fragment):
    with pytest.raises(PayloadError) as err:
        parse_rows(raw, SPEC)
    assert err.value.status == status
    assert fragment in err.value.message


def test_row_limit():
    with pytest.raises(PayloadError) as err:
        parse_rows(body([ROW] * 11), SPEC, max_rows=10)
    assert err.value.status == 413 and "11 rows exceed the limit of 10" in err.value.message


def test_frame_types_match_training_even_when_a_column_is_all_null():
    frame = frame_from_columns(parse_rows(body([{"age": None, "charges": None, "plan": None}]), SPEC), SPEC)
    assert list(frame.columns) == ["age", "charges", "plan"]
    assert str(frame["age"].dtype) == "float64" and frame["age"].isna().all()
    assert frame["plan"].dtype == object and frame["plan"].isna().all()


@pytest.mark.parametrize("raw,status,fragment", [
    ('{"rows": [{"age": 1' + "0" * 400 + ', "charges": 1.0, "plan": "a"}]}', 422, "out of range"),
    ('{"rows": [{"age": 1' + "0" * 5000 + ', "charges": 1.0, "plan": "a"}]}', 400, "not usable JSON"),
])
def test_huge_numbers_are_a_4xx_not_a_crash(raw, status, fragment):
    with pytest.raises(PayloadError) as err:
        parse_rows(raw.encode(), SPEC)
    assert err.value.status == status and fragment in str(err.value)
