"""Serving rows shaped like landing rows: the endpoint computes their features with the SQL of
the use case's dbt model (compiled once, run by DuckDB over each request's rows), so what is
served is what training read. Rows with every feature column keep working.

The churn use case's real dbt models are compiled; the model served is a small pipeline of the
use case's own family trained on simulated rows, set on the holder directly (the registry side
of serving is covered by test_governance.py).
"""
import datetime as dt
import json
import os
import subprocess
import time

import httpx
import pytest

from mlops_assets.serving.app import create_app, feature_spec, request_columns
from mlops_assets.serving.features import LandingSpec, compile_landing_spec
from mlops_assets.serving.holder import ChampionHolder, LoadedModel, frame_from_columns
from mlops_assets.serving.validation import PayloadError
from mlops_assets.simulate.churn import SimulationConfig, simulate_day
from mlops_assets.use_cases.loader import get_use_case
from mlops_assets_tests.dev_server import serve_app


@pytest.fixture(scope="module")
def uc():
    return get_use_case("churn")


@pytest.fixture(scope="module")
def landing(uc) -> LandingSpec:
    return compile_landing_spec(uc, feature_spec(uc))


def landing_rows(uc, n: int, day: dt.date = dt.date(2026, 1, 5)) -> list[dict]:
    cfg = SimulationConfig(rows_per_day=n)
    frame = simulate_day(day, cfg).drop(columns=[uc.target_column])
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def test_landing_rows_get_exactly_the_features_dbt_builds(uc, landing, tmp_path):
    """The same rows loaded into raw.churn and built by `dbt run` give the features the server
    computes, column for column (the derived ratios included)."""
    import duckdb
    import pandas as pd

    from mlops_assets import settings
    from mlops_assets.chain.resources import dbt_executable

    rows = landing_rows(uc, 40)
    db = tmp_path / "wh.duckdb"
    frame = pd.DataFrame(rows).assign(**{uc.timestamp_column: lambda f: pd.to_datetime(f[uc.timestamp_column]),
                                         uc.target_column: None, "_source_file": "f.csv",
                                         "_loaded_at": pd.Timestamp("2026-01-06")})
    frame[uc.target_column] = frame[uc.target_column].astype("Int64")
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA raw")
        con.register("incoming", frame)
        con.execute(f"CREATE TABLE raw.churn AS SELECT * REPLACE (CAST({uc.timestamp_column} AS TIMESTAMP) AS "
                    f"{uc.timestamp_column}, CAST(_loaded_at AS TIMESTAMP) AS _loaded_at) FROM incoming")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_DBT_")}
    env |= {"MLOPS_DBT_TARGET": "local", "MLOPS_DUCKDB_PATH": str(db), "DO_NOT_TRACK": "1"}
    proc = subprocess.run([dbt_executable(), "run", "--select", f"+{uc.features.dbt_model}", "--project-dir",
                           str(settings.DBT_PROJECT_DIR), "--profiles-dir", str(settings.DBT_PROJECT_DIR),
                           "--target", "local", "--target-path", str(tmp_path / "target"),
                           "--log-path", str(tmp_path / "logs")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        built = con.execute(f"SELECT * FROM main.{uc.features.dbt_model} "
                            f"ORDER BY {uc.entity_column}, {uc.timestamp_column}").df()
    order = sorted(range(len(rows)), key=lambda i: (rows[i][uc.entity_column], rows[i][uc.timestamp_column]))
    served = landing.columns_of([rows[i] for i in order])
    assert len(built) == len(rows)
    for c in uc.features.numeric:
        assert served[c] == pytest.approx(built[c].astype(float).tolist()), c
    for c in uc.features.categorical:
        assert served[c] == built[c].tolist(), c
    assert "charges_per_tenure_month" in served and "support_calls_per_login" in served


def test_rows_sharing_entity_and_timestamp_each_get_their_features(uc, landing):
    row = landing_rows(uc, 1)[0]
    twin = {**row, "total_charges": row["total_charges"] * 2}
    cols = landing.columns_of([row, twin, {**row, uc.timestamp_column: None}])
    assert cols["charges_per_tenure_month"][1] == pytest.approx(2 * cols["charges_per_tenure_month"][0])
    assert cols["charges_per_tenure_month"][2] == pytest.approx(cols["charges_per_tenure_month"][0])


def test_landing_column_names_match_whatever_their_case(uc, landing):
    row = landing_rows(uc, 1)[0]
    upper = {k.upper(): v for k, v in row.items()}
    assert landing.columns_of([upper]) == landing.columns_of([row])


BAD = {
    "missing raw column": (lambda r: {k: v for k, v in r.items() if k != "num_logins_30d"},
                           ["row 1", "num_logins_30d", "landing row", "--example"]),
    "string for a number": (lambda r: {**r, "tenure_months": "12"},
                            ["row 1", "'tenure_months'", "must be a number or null", "'12'"]),
    "number for a category": (lambda r: {**r, "plan_type": 3}, ["row 1", "'plan_type'", "must be a string or null"]),
    "timestamp not a timestamp": (lambda r: {**r, "event_ts": "yesterday"},
                                  ["row 1", "'event_ts'", "not a timestamp", "ISO 8601"]),
    "timestamp a number": (lambda r: {**r, "event_ts": 17}, ["row 1", "'event_ts'", "timestamp string"]),
    "boolean": (lambda r: {**r, "age": True}, ["row 1", "'age'", "got boolean"]),
    "not an object": (lambda r: [r], ["row 1", "must be an object"]),
}


@pytest.mark.parametrize("what", sorted(BAD))
def test_a_bad_landing_row_is_refused_naming_the_row_and_the_column(uc, landing, what):
    change, fragments = BAD[what]
    good = landing_rows(uc, 2)
    body = json.dumps({"rows": [good[0], change(good[1])]}).encode()
    with pytest.raises(PayloadError) as exc:
        request_columns(body, feature_spec(uc), 100, landing)
    assert exc.value.status == 422
    for fragment in fragments:
        assert fragment in exc.value.message, (what, exc.value.message)


@pytest.fixture(scope="module")
def server(uc, landing):
    from mlops_assets.training.pipeline import build_pipeline

    spec = feature_spec(uc)
    train = landing_rows(uc, 300)
    X = frame_from_columns(landing.columns_of(train), spec)
    y = (X["charges_per_tenure_month"] > X["charges_per_tenure_month"].median()).astype(int)
    model = build_pipeline(uc.model.family, {"max_iter": 20}, uc.features.numeric, uc.features.categorical,
                           uc.model.preprocessing).fit(X, y)
    holder = ChampionHolder(uc.registered_model_name, spec, tracking_uri="unused", poll_seconds=3600)
    holder._current = LoadedModel(uc.registered_model_name, "3", model, time.time(), 0.0)
    with serve_app(create_app(holder, max_rows=1000, poll=False, landing=landing)) as port:
        yield f"http://127.0.0.1:{port}"


def test_the_server_scores_landing_rows_as_it_scores_their_feature_rows(uc, landing, server):
    rows = landing_rows(uc, 25, dt.date(2026, 1, 9))
    by_landing = httpx.post(f"{server}/predict", json={"rows": rows}, timeout=30)
    assert by_landing.status_code == 200, by_landing.text
    assert by_landing.json()["input"] == "landing rows" and by_landing.json()["rows"] == 25
    features = landing.feature_records(rows)
    assert {"charges_per_tenure_month", "support_calls_per_login"} <= set(features[0])
    by_features = httpx.post(f"{server}/predict", json={"rows": features}, timeout=30)
    assert by_features.status_code == 200, by_features.text
    assert by_features.json()["input"] == "feature rows"
    assert by_landing.json()["scores"] == pytest.approx(by_features.json()["scores"])
    health = httpx.get(f"{server}/health", timeout=10).json()
    assert "tenure_months" in health["landing_columns"] and "charges_per_tenure_month" not in health["landing_columns"]


def test_a_bad_landing_row_gets_a_422_over_http(uc, server):
    rows = landing_rows(uc, 3)
    rows[2].pop("monthly_charges")
    r = httpx.post(f"{server}/predict", json={"rows": rows}, timeout=30)
    assert r.status_code == 422
    assert "row 2" in r.json()["error"] and "monthly_charges" in r.json()["error"]


def test_serve_example_prints_a_body_the_server_takes(data_dir, capsys, uc, landing, server):
    from mlops_assets.cli import main

    assert main(["serve", "--example"]) == 0
    out = capsys.readouterr().out
    body = json.loads(out)  # nothing else on stdout: it is piped to curl
    assert body["rows"] and uc.target_column not in body["rows"][0]
    assert set(body["rows"][0]) <= set(landing.row_columns)
    assert "charges_per_tenure_month" not in body["rows"][0]
    r = httpx.post(f"{server}/predict", content=out.encode(), headers={"Content-Type": "application/json"},
                   timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["input"] == "landing rows"


def test_serve_example_takes_rows_from_the_landing_folder(data_dir, capsys, uc):
    from mlops_assets.cli import main

    folder = uc.landing.path()
    folder.mkdir(parents=True)
    rows = landing_rows(uc, 3)
    import pandas as pd

    pd.DataFrame(rows).assign(customer_id=["X1", "X2", "X3"]).to_csv(folder / "churn_2026-01-05.csv", index=False)
    assert main(["serve", "churn", "--example"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert [r["customer_id"] for r in body["rows"]] == ["X1", "X2"]


def test_the_features_example_fits_the_logged_model_signature(data_dir, capsys, uc, landing, tmp_path):
    """`mlflow models serve` serves the logged scikit-learn model, which takes feature rows:
    `serve --example --features` prints them, typed as the model's signature wants."""
    import mlflow
    from mlflow.models import infer_signature, validate_serving_input

    import pandas as pd

    from mlops_assets.cli import main
    from mlops_assets.training.pipeline import build_pipeline

    # Typed as training reads them from the warehouse: DuckDB's INTEGER columns are int32.
    rows = landing_rows(uc, 200)
    X = pd.DataFrame(landing.feature_records(rows)).astype(
        {c: "int32" for c in ("tenure_months", "num_support_calls", "days_since_last_login", "num_logins_30d",
                              "age", "late_payments_12m")})
    y = (X["support_calls_per_login"] > X["support_calls_per_login"].median()).astype(int)
    model = build_pipeline(uc.model.family, {"max_iter": 10}, uc.features.numeric, uc.features.categorical,
                           uc.model.preprocessing).fit(X, y)
    path = tmp_path / "model"
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(X.head(5), model.predict_proba(X.head(5))),
                              pyfunc_predict_fn="predict_proba", serialization_format="pickle")
    assert main(["serve", "churn", "--example", "--features"]) == 0
    body = capsys.readouterr().out
    assert len(validate_serving_input(str(path), body)) == 2
