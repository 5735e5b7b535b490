"""Served means served (issue 15 item 8), on real DuckDB and PostgreSQL tables: a prediction counts
as served when it was made before its label arrived. A day re-scored after its labels keeps its
served predictions for performance and counts the re-scores apart; a correction made before the
labels arrived is what was served; a label reloaded unchanged keeps its arrival time."""
import datetime as dt
import time

import duckdb
import pandas as pd
import pytest

from mlops_assets.ingest import labels, landing
from mlops_assets.monitoring import outcomes as oc
from mlops_assets.monitoring import performance as perf
from mlops_assets.serving import predictions as pr
from mlops_assets_tests.test_labels import _labels, _rows

D1 = dt.date(2026, 1, 1)
START, END = dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2)
ROWS = ["C1,2026-01-01 10:00:00,", "C2,2026-01-01 11:00:00,", "C3,2026-01-01 12:00:00,",
        "C4,2026-01-01 13:00:00,"]
LABELS = ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,0", "C3,2026-01-01 12:00:00,1",
          "C4,2026-01-01 13:00:00,0"]


@pytest.fixture
def con(data_dir):
    c = duckdb.connect(str(data_dir / "w.duckdb"))
    yield c
    c.close()


def _now() -> pd.Timestamp:
    time.sleep(0.02)  # every step strictly after the previous one
    return pd.Timestamp.now(tz="UTC").tz_localize(None)


def _score(con, uc, version: str, offset: float) -> pd.Timestamp:
    """Score the day's raw rows as batch_predictions does (scored_at: the time of scoring)."""
    rows = con.execute("SELECT DISTINCT customer_id, event_ts FROM raw.churn WHERE event_ts >= ? AND event_ts < ? "
                       "ORDER BY event_ts", [START, END]).df()
    at = _now()
    frame = pd.DataFrame({"customer_id": rows.customer_id, "event_ts": pd.to_datetime(rows.event_ts),
                          "score": [offset + i / 10 for i in range(len(rows))], "model_version": version,
                          "scored_at": pd.Series(at, index=rows.index, dtype="datetime64[ns]")})
    pr.replace_window(con, uc, frame, START, END)
    return at


def _performance_rows(con, uc) -> pd.DataFrame:
    """What the performance report judges: the served predictions joined with their outcomes."""
    served = oc.served_predictions(con, uc, START, END)
    joined = perf.join_outcomes(served, oc.outcomes(con, uc, START, END), uc.entity_column, uc.timestamp_column)
    return joined.set_index("customer_id")


def _latest(con) -> dict:
    return dict(con.execute("SELECT customer_id, model_version FROM predictions.churn").fetchall())


def _rescore_after_labels(con, uc):
    _rows(uc, ROWS)
    landing.load_window(con, uc, START, END)
    first = _score(con, uc, "1", 0.1)
    _now()
    _labels(uc, "l.csv", LABELS)
    labels.load_labels_window(con, uc, START, END)
    _score(con, uc, "2", 0.5)  # automation or a backfill re-scores the day with a newer champion
    joined = _performance_rows(con, uc)
    assert set(joined.model_version) == {"1"} and joined.label.notna().all() and len(joined) == 4
    assert joined.score.round(6).tolist() == [0.1, 0.2, 0.3, 0.4]
    assert (pd.to_datetime(oc.served_predictions(con, uc, START, END).scored_at) == first).all()
    assert not oc.served_predictions(con, uc, START, END).scored_after_label.any()
    assert oc.rescored_rows(con, uc, START, END) == 4
    # the re-scores are kept apart, not lost: the latest scores are v2's
    assert _latest(con) == {f"C{i}": "2" for i in range(1, 5)}
    assert set(oc.latest_predictions(con, uc, START, END).model_version) == {"2"}


def test_a_day_rescored_after_its_labels_arrived_keeps_its_served_predictions(churn, con):
    _rescore_after_labels(con, churn)
    # a second re-score changes nothing served either
    _score(con, churn, "3", 0.55)
    assert set(_performance_rows(con, churn).model_version) == {"1"}
    assert oc.rescored_rows(con, churn, START, END) == 4


def test_a_correction_before_the_labels_arrived_counts_as_served(churn, con):
    _rows(churn, ROWS)
    landing.load_window(con, churn, START, END)
    _score(con, churn, "1", 0.1)
    # the landing file is corrected before any label arrived: C4 goes, C5 comes; re-scored
    _rows(churn, ROWS[:3] + ["C5,2026-01-01 14:00:00,"])
    landing.load_window(con, churn, START, END)
    corrected = _score(con, churn, "2", 0.5)
    assert oc.rescored_rows(con, churn, START, END) == 0
    _labels(churn, "l.csv", LABELS[:3] + ["C5,2026-01-01 14:00:00,1"])
    labels.load_labels_window(con, churn, START, END)
    _score(con, churn, "3", 0.7)  # after the labels: a re-score
    joined = _performance_rows(con, churn)
    assert sorted(joined.index) == ["C1", "C2", "C3", "C5"] and set(joined.model_version) == {"2"}
    assert (pd.to_datetime(oc.served_predictions(con, churn, START, END).scored_at) == corrected).all()
    assert oc.rescored_rows(con, churn, START, END) == 4


def test_rows_whose_labels_arrived_keep_their_prediction_the_others_take_the_rescore(churn, con):
    _rows(churn, ROWS)
    landing.load_window(con, churn, START, END)
    _score(con, churn, "1", 0.1)
    _labels(churn, "l.csv", LABELS[:2])  # C1 and C2 labelled; C3, C4 not yet
    labels.load_labels_window(con, churn, START, END)
    _score(con, churn, "2", 0.5)
    served = oc.served_predictions(con, churn, START, END).set_index("customer_id").model_version.to_dict()
    assert served == {"C1": "1", "C2": "1", "C3": "2", "C4": "2"}
    assert oc.rescored_rows(con, churn, START, END) == 2


def test_a_target_carried_by_the_landing_file_arrives_with_its_row(churn, con):
    """No prediction can precede such a label: the row's first prediction is served (flagged),
    and re-scoring never replaces it."""
    _rows(churn, ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,0", "C3,2026-01-01 12:00:00,"])
    landing.load_window(con, churn, START, END)
    _score(con, churn, "1", 0.1)
    served = oc.served_predictions(con, churn, START, END).set_index("customer_id")
    assert served.scored_after_label.to_dict() == {"C1": True, "C2": True, "C3": False}
    _score(con, churn, "2", 0.5)
    served = oc.served_predictions(con, churn, START, END).set_index("customer_id").model_version.to_dict()
    assert served == {"C1": "1", "C2": "1", "C3": "2"}  # C3 has no label yet: the re-score is served
    assert oc.rescored_rows(con, churn, START, END) == 2


def test_a_label_reloaded_unchanged_keeps_its_arrival_time(churn, con):
    _rows(churn, ROWS)
    landing.load_window(con, churn, START, END)
    _labels(churn, "l.csv", LABELS[:2])
    labels.load_labels_window(con, churn, START, END)
    first = dict(con.execute("SELECT customer_id, _loaded_at FROM labels.churn").fetchall())
    _now()
    # a second file: C2 unchanged (the same label again), C3 new; then C1 changes
    _labels(churn, "l2.csv", [LABELS[1], LABELS[2]], age_s=30)
    labels.load_labels_window(con, churn, START, END)
    _labels(churn, "l3.csv", ["C1,2026-01-01 10:00:00,0"], age_s=10)
    labels.load_labels_window(con, churn, START, END)
    now = dict(con.execute("SELECT customer_id, _loaded_at FROM labels.churn").fetchall())
    assert now["C2"] == first["C2"]
    assert now["C1"] > first["C1"] and now["C3"] > first["C2"]  # changed, new: the time of their load
    # in UTC, whatever the session's zone
    assert abs(dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - now["C3"]) < dt.timedelta(minutes=5)


def test_predictions_stored_before_served_records_were_kept_count_as_served(churn, con):
    """A warehouse whose predictions table predates the served table: its rows are what was
    served; the first re-score after labels arrived keeps them."""
    _rows(churn, ROWS)
    landing.load_window(con, churn, START, END)
    at = _now()
    con.execute("CREATE SCHEMA predictions")
    con.execute("CREATE TABLE predictions.churn AS SELECT customer_id, event_ts, 0.25 AS score, '1' AS model_version, "
                "CAST(? AS TIMESTAMP) AS scored_at FROM raw.churn", [at.to_pydatetime()])
    assert set(oc.served_predictions(con, churn, START, END).model_version) == {"1"}
    _now()
    _labels(churn, "l.csv", LABELS)
    labels.load_labels_window(con, churn, START, END)
    _score(con, churn, "2", 0.5)
    assert set(_performance_rows(con, churn).model_version) == {"1"}
    assert oc.rescored_rows(con, churn, START, END) == 4


def test_predictions_without_their_scoring_time_are_refused(churn, con):
    frame = pd.DataFrame({"customer_id": ["C1"], "event_ts": [START], "score": [0.5], "model_version": "1",
                          "scored_at": [pd.NaT]})
    with pytest.raises(ValueError, match="no scored_at"):
        pr.replace_window(con, churn, frame, START, END)
    with pytest.raises(ValueError, match="scored_at"):
        pr.replace_window(con, churn, frame.drop(columns="scored_at"), START, END)


@pytest.fixture
def pg(postgres_url, data_dir):
    from mlops_assets.warehouse.postgres_store import open_connection
    from mlops_assets_tests import pg_server

    url = pg_server.fresh_database(postgres_url, "served")
    c = open_connection(url)
    yield c
    c.close()
    pg_server.drop_database(url)


def test_served_predictions_on_postgresql(churn, pg):
    _rescore_after_labels(pg, churn)
    assert pg.execute("SELECT count(*) FROM served.churn").fetchone()[0] == 4


def test_a_correction_before_the_labels_on_postgresql(churn, pg):
    test_a_correction_before_the_labels_arrived_counts_as_served(churn, pg)


def test_a_label_reloaded_unchanged_keeps_its_arrival_time_on_postgresql(churn, pg):
    test_a_label_reloaded_unchanged_keeps_its_arrival_time(churn, pg)
