"""Label files (issue 9 items 1-2): unlabelled rows land, labels that arrive later are validated,
joined to their rows (label file wins), counted when they contradict or have no row. Real DuckDB."""
import datetime as dt
import os

import duckdb
import pytest

from mlops_assets.ingest import labels, landing

D1 = dt.date(2026, 1, 1)
HEADER = "customer_id,event_ts,churned"


@pytest.fixture
def churn(churn):
    assert churn.labels is not None, "the demo use case declares a label folder"
    return churn


@pytest.fixture
def con(data_dir):
    c = duckdb.connect(str(data_dir / "w.duckdb"))
    yield c
    c.close()


def _window(day=D1, days=1):
    start = dt.datetime.combine(day, dt.time())
    return start, start + dt.timedelta(days=days)


def _write(path, text, age_s=60):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t = path.stat().st_mtime - age_s
    os.utime(path, (t, t))
    return path


def _rows(uc, lines):
    return _write(uc.landing.path() / "rows.csv", HEADER + "\n" + "\n".join(lines) + "\n")


def _labels(uc, name, lines, age_s=60):
    return _write(uc.labels.path() / name, HEADER + "\n" + "\n".join(lines) + "\n", age_s)


def test_rows_with_empty_target_land_and_coverage_is_counted(churn, con):
    _rows(churn, ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,", "C3,2026-01-01 12:00:00,",
                  "C4,2026-01-01 13:00:00,0"])
    loaded = landing.load_window(con, churn, *_window())
    assert loaded.rows == 4 and loaded.labelled_per_day == {"2026-01-01": 2} and loaded.labelled_rows == 2
    assert con.execute("SELECT count(*) FROM raw.churn WHERE churned IS NULL").fetchone()[0] == 2
    assert labels.coverage(con, churn, *_window()) == {"2026-01-01": 0.5}


def test_all_targets_empty_in_the_first_file_still_gives_an_integer_target(churn, con):
    _rows(churn, ["C1,2026-01-01 10:00:00,", "C2,2026-01-01 11:00:00,"])
    landing.load_window(con, churn, *_window())
    assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = 'raw' "
                       "AND table_name = 'churn' AND column_name = 'churned'").fetchone()[0] == "INTEGER"


def test_label_file_wins_over_raw_target_and_outcomes_join(churn, con):
    _rows(churn, ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,", "C3,2026-01-01 12:00:00,",
                  "C4,2026-01-01 13:00:00,0"])
    landing.load_window(con, churn, *_window())
    _labels(churn, "l1.csv", ["C2,2026-01-01 11:00:00,1", "C4,2026-01-01 13:00:00,1",
                              "C9,2026-01-01 09:00:00,0"])  # C9's row never arrived
    load = labels.load_labels_window(con, churn, *_window())
    assert (load.rows, load.new, load.changed, load.without_rows, load.overriding_raw) == (3, 3, 0, 1, 1)
    assert load.without_rows_examples == ("C9 @ 2026-01-01 09:00:00",)
    out = labels.outcomes(con, churn, D1, D1 + dt.timedelta(days=1))
    assert list(out.columns) == ["customer_id", "event_ts", "label", "label_source"]
    got = {(r.customer_id, r.label, r.label_source) for r in out.itertuples()}
    # C3 has no label anywhere; C4's label file (1) wins over the feature file's target (0).
    assert got == {("C1", 1, "raw"), ("C2", 1, "labels"), ("C4", 1, "labels")}
    assert load.coverage == {"2026-01-01": 0.75}


def test_newer_file_contradicting_replaces_and_is_counted_nothing_doubled(churn, con):
    _labels(churn, "a.csv", ["C1,2026-01-01 10:00:00,0", "C2,2026-01-01 11:00:00,1"], age_s=120)
    first = labels.load_labels_window(con, churn, *_window())
    assert (first.rows, first.new, first.conflicting) == (2, 2, 0)
    _labels(churn, "b.csv", ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,1"], age_s=60)
    second = labels.load_labels_window(con, churn, *_window())
    assert (second.rows, second.new, second.changed, second.conflicting, second.removed) == (2, 0, 1, 1, 0)
    stored = dict(con.execute("SELECT customer_id, churned FROM labels.churn").fetchall())
    assert stored == {"C1": 1, "C2": 1}
    again = labels.load_labels_window(con, churn, *_window())  # reloading changes nothing
    assert (again.rows, again.new, again.changed) == (2, 0, 0)
    assert con.execute("SELECT count(*) FROM labels.churn").fetchone()[0] == 2


def test_identical_repeats_are_stored_once(churn, con):
    _labels(churn, "a.csv", ["C1,2026-01-01 10:00:00,1", "C1,2026-01-01 10:00:00,1"])
    load = labels.load_labels_window(con, churn, *_window())
    assert (load.rows, load.duplicates) == (1, 1)


def test_labels_partition_by_the_events_day(churn, con):
    _labels(churn, "week.csv", ["C1,2026-01-01 23:30:00,1", "C2,2026-01-02T00:30:00+02:00,0",
                                "C3,2026-01-03 08:00:00,1"])
    load = labels.load_labels_window(con, churn, *_window(D1, 1))
    # 00:30 at +02:00 is 22:30 UTC on the 1st
    assert load.labels_per_day == {"2026-01-01": 2}
    assert labels.load_labels_window(con, churn, *_window(D1 + dt.timedelta(days=2))).rows == 1


def test_a_removed_label_file_removes_its_labels(churn, con):
    path = _labels(churn, "a.csv", ["C1,2026-01-01 10:00:00,1"])
    labels.load_labels_window(con, churn, *_window())
    path.unlink()
    load = labels.load_labels_window(con, churn, *_window())
    assert (load.rows, load.removed) == (0, 1)


def test_unreadable_new_version_keeps_the_last_good_labels(churn, con):
    path = _labels(churn, "a.csv", ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 10:00:00,0"])
    labels.load_labels_window(con, churn, *_window())
    path.write_bytes(b"customer_id,event_ts,churned\n\xff\xfe garbage \x00\n")
    load = labels.load_labels_window(con, churn, *_window())
    assert load.rows == 2 and load.kept_rows == {str(path): 2}
    assert "not UTF-8" in load.unreadable[str(path)] and "kept the 2 label(s)" in load.unreadable[str(path)]


def test_a_bad_label_value_fails_the_day_naming_file_row_and_column(churn, con):
    _labels(churn, "a.csv", ["C1,2026-01-01 10:00:00,1"])
    labels.load_labels_window(con, churn, *_window())
    _labels(churn, "b.csv", ["C2,2026-01-01 11:00:00,7"])
    with pytest.raises(landing.LandingFileError, match=r"b\.csv: column 'churned' must be 0 or 1.*'7' at "
                                                       r"customer_id='C2', event_ts='2026-01-01 11:00:00'"):
        labels.load_labels_window(con, churn, *_window())
    assert con.execute("SELECT count(*) FROM labels.churn").fetchone()[0] == 1  # nothing written


def test_outcomes_without_label_tables(churn, con):
    assert labels.outcomes(con, churn, D1, D1 + dt.timedelta(days=1)).empty
    _rows(churn, ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,"])
    landing.load_window(con, churn, *_window())
    out = labels.outcomes(con, churn, D1, D1 + dt.timedelta(days=1))
    assert out[["customer_id", "label"]].values.tolist() == [["C1", 1]]


def _features_table(con, uc, days: int, rows: int, labelled_days: int):
    """main.features_churn with `days` days of `rows` rows; only the first `labelled_days` labelled."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frames = []
    for d in range(days):
        day = dt.datetime.combine(D1 + dt.timedelta(days=d), dt.time(12))
        df = pd.DataFrame({c: rng.normal(size=rows) for c in uc.features.numeric})
        for c in uc.features.categorical:
            df[c] = "a"
        df[uc.entity_column] = [f"C{d}_{i}" for i in range(rows)]
        df[uc.timestamp_column] = day
        df[uc.target_column] = pd.array(list(rng.integers(0, 2, rows)) if d < labelled_days else [pd.NA] * rows,
                                        dtype="Int64")
        frames.append(df)
    cur = con.cursor()  # a cursor of its own: the connection may hold a result the code under test left
    cur.register("f", pd.concat(frames))
    cur.execute("CREATE OR REPLACE TABLE main.features_churn AS SELECT * FROM f")
    cur.close()


def test_training_reads_labelled_rows_only_and_ends_at_the_newest_labelled_day(churn, con):
    from mlops_assets.training.data import build_frame

    _features_table(con, churn, days=20, rows=20, labelled_days=13)
    frame, info = build_frame(con, churn)
    assert frame[churn.target_column].notna().all()
    assert len(frame) == 13 * 20
    assert info.holdout_end == str(D1 + dt.timedelta(days=12)) and info.holdout_rows == churn.split.holdout_days * 20


def test_too_few_labelled_rows_fail_clearly(churn, con):
    from mlops_assets.training.data import build_frame

    _features_table(con, churn, days=10, rows=20, labelled_days=0)
    with pytest.raises(ValueError, match=r"main\.features_churn has 0 labelled row\(s\).*200 row\(s\) without a label"
                                         r".*at least 50.*label files in .*churn_labels"):
        build_frame(con, churn)
    _features_table(con, churn, days=10, rows=2, labelled_days=10)
    with pytest.raises(ValueError, match=r"has 20 labelled row\(s\).*at least 50"):
        build_frame(con, churn)


def test_raw_and_labels_assets_say_the_label_coverage_as_numbers(churn, data_dir):
    import dagster as dg

    from mlops_assets.chain import handoffs
    from mlops_assets.chain.raw import build_raw_asset
    from mlops_assets.chain.labels import build_labels_asset
    from mlops_assets.chain.resources import DuckDBWarehouse

    _rows(churn, ["C1,2026-01-01 10:00:00,1", "C2,2026-01-01 11:00:00,", "C3,2026-01-01 12:00:00,",
                  "C4,2026-01-01 13:00:00,"])
    resources = {"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))}
    instance = dg.DagsterInstance.ephemeral()

    def run(asset):
        result = dg.materialize([asset], partition_key=D1.isoformat(), instance=instance, resources=resources)
        return result.get_asset_materialization_events()[0].materialization.metadata

    raw_md = run(build_raw_asset(churn))
    assert raw_md[handoffs.LABEL_COVERAGE].value == 0.25
    assert raw_md[handoffs.LABEL_COVERAGE_PER_DAY].value == {"2026-01-01": 0.25}
    _labels(churn, "l.csv", ["C2,2026-01-01 11:00:00,0", "C1,2026-01-01 10:00:00,0", "C8,2026-01-01 08:00:00,1"],
            age_s=120)
    md = run(build_labels_asset(churn))
    assert md[handoffs.LABEL_COVERAGE].value == 0.5
    assert (md[handoffs.ROW_COUNT].value, md[handoffs.LABELS_WITHOUT_ROWS].value) == (3, 1)
    assert md["labels_overriding_raw_target"].value == 1
    _labels(churn, "m.csv", ["C2,2026-01-01 11:00:00,1"])  # a correction, in a newer file
    md = run(build_labels_asset(churn))
    assert (md[handoffs.LABELS_CHANGED].value, md["labels_conflicting_between_files"].value) == (1, 1)
    assert run(build_raw_asset(churn))[handoffs.LABEL_COVERAGE].value == 0.5  # raw counts the label files too
