"""Broken and hostile label files beside good ones, on a real DuckDB file (issue 9 item 2: label
files get the feature files' treatment).

Each case writes two good label files (2026-01-01 and -02, 30 labels each) and one bad thing for
2026-01-03, then loads the three days one at a time with `labels.load_labels_window`. Outcomes
as in test_bad_landing_files.py: unreadable (left out, named in `unreadable`), refused (the day
fails with an error naming the file, nothing of that day written), accepted, outside.
"""
import datetime as dt
import re

import duckdb
import pytest

from mlops_assets.ingest import labels, landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_due_labels
from mlops_assets_tests.test_bad_landing_files import (HOSTILE, Case, dangling_link, parquet_beside, symlink_out,
                                                       write_text)

D1 = dt.date(2026, 1, 1)
LAST = dt.date(2026, 1, 31)
HEADER = "customer_id,event_ts,churned"


def rows(n: int, header: str = HEADER, sep: str = "\n") -> str:
    return sep.join([header, *(f"C{i},2026-01-03 10:{i:02d}:00,{i % 2}" for i in range(n))]) + sep


CASES = {
    "label 2": (Case("two.csv", "refused", r"column 'churned' must be 0 or 1; 1 row\(s\) are not \(e\.g\. '2' at "
                                           r"customer_id='C9', event_ts='2026-01-03 11:00:00'\)"),
                write_text(rows(3) + "C9,2026-01-03 11:00:00,2\n")),
    "empty label": (Case("empty_label.csv", "refused", r"'churned' must be 0 or 1.*an empty label is not allowed"),
                    write_text(rows(3) + "C9,2026-01-03 11:00:00,\n")),
    "label yes": (Case("yes.csv", "refused", r"'churned' must be 0 or 1.*a yes/no or true/false value"),
                  write_text(f"{HEADER}\nC1,2026-01-03 10:00:00,yes\n")),
    "missing label column": (Case("nolabel.csv", "refused", r"missing required column\(s\) \['churned'\] of a label "
                                                            r"file"), write_text("customer_id,event_ts\nC1,2026-01-03 10:00:00\n")),
    "missing entity column": (Case("noentity.csv", "refused", r"missing required column\(s\) \['customer_id'\]"),
                              write_text("event_ts,churned\n2026-01-03 10:00:00,1\n")),
    "empty entity": (Case("noid.csv", "refused", r"column 'customer_id' is empty in 1 row\(s\) \(e\.g\. at "
                                                 r"event_ts='2026-01-03 11:00:00"),
                     write_text(rows(2) + ",2026-01-03 11:00:00,1\n")),
    "one row labelled twice, differently": (
        Case("clash.csv", "refused", r"rows customer_id='C1', event_ts='2026-01-03 10:01:00' carry different labels "
                                     r"\[0, 1\]"), write_text(rows(3) + "C1,2026-01-03 10:01:00,0\n")),
    "missing timestamp column": (Case("nots.csv", "unreadable", r"missing required column\(s\) \['event_ts'\]"),
                                 write_text("customer_id,churned\nC1,1\n")),
    # Every missing column is named, not only the first (issue 16 item 5).
    "missing several columns": (Case("several.csv", "unreadable",
                                     r"missing required column\(s\) \['event_ts', 'churned'\] of a label file"),
                                write_text("customer_id,note\nC1,x\n")),
    # Names differing only in case are one name, as to DuckDB and dbt (issue 16 item 4).
    "upper-case column names": (Case("upper.csv", "accepted", rows=3), write_text(rows(3, HEADER.upper()))),
    "header only": (Case("header.csv", "accepted", r"header\.csv: a header and no rows; nothing to load", rows=0),
                    write_text(HEADER + "\n")),
    "unparseable timestamps": (Case("badts.csv", "unreadable", r"'event_ts' must hold timestamps.*'last week'"),
                               write_text(rows(3) + "C9,last week,1\n")),
    "latin-1 bytes": (Case("latin.csv", "unreadable", r"not UTF-8 \(byte 0xe9"),
                      write_text(f"{HEADER}\nCé,2026-01-03 10:00:00,1\n", "latin-1")),
    "0 bytes": (Case("empty.csv", "unreadable", r"empty file \(0 bytes\)"), write_text(b"")),
    "semicolon delimiter": (Case("semi.csv", "unreadable", r"seems to be separated by ';', expected ','"),
                            write_text(rows(3, HEADER.replace(",", ";")).replace(",", ";"))),
    "hostile header": (Case("hostile.csv", "unreadable", r"column name .*COPY .* is not a plain identifier"),
                       write_text(f'{HEADER},"{HOSTILE.replace(chr(34), chr(34) * 2)}"\nC1,2026-01-03 10:00:00,1,1\n')),
    "symlink out of the folder": (Case("stolen.csv", "unreadable", r"symbolic link to .*secret\.csv, outside the "
                                                                   r"landing folder"), symlink_out),
    "dangling symlink": (Case("dangling.csv", "unreadable", "symbolic link to a missing file"), dangling_link),
    "glob star in the name": (Case("labels_*.csv", "accepted", rows=4), write_text(rows(4))),
    "extra column": (Case("extra.csv", "accepted", rows=2),
                     write_text(f"{HEADER},note\nC1,2026-01-03 10:00:00,1,a\nC2,2026-01-03 11:00:00,0,b\n")),
    "identical label twice": (Case("twice.csv", "accepted", rows=3), write_text(rows(3) + "C0,2026-01-03 10:00:00,0\n")),
    "byte order mark and CRLF": (Case("bom.csv", "accepted", rows=3), write_text("\ufeff" + rows(3, sep="\r\n"))),
    "parquet under a *.csv pattern": (
        Case("labels_2026-01-03.parquet", "accepted",
             r"not matched by the landing pattern '\*\.csv'; ignored \(change the use case's labels\.pattern", rows=0),
        parquet_beside),
    "timestamps in 2099": (Case("future.csv", "outside", rows=2),
                           write_text(f"{HEADER}\nC1,2099-01-03 10:00:00,1\nC2,2099-06-03 10:00:00,0\n")),
    "timestamps before first_day": (Case("early.csv", "outside", rows=1),
                                    write_text(f"{HEADER}\nC1,2020-01-03 10:00:00,1\n")),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_label_file_beside_good_ones(kind, churn, data_dir, tmp_path):
    case, write = CASES[kind]
    folder = churn.labels.path()
    good = write_due_labels(folder, day_range(D1, 2), SimulationConfig(rows_per_day=30), D1 + dt.timedelta(days=9), 7)
    assert len(good) == 2
    bad = folder / case.name
    write(bad, tmp_path)

    loads, errors = [], []
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        for day in day_range(D1, 3):
            start = dt.datetime.combine(day, dt.time())
            try:
                loads.append(labels.load_labels_window(con, churn, start, start + dt.timedelta(days=1), last_day=LAST))
            except landing.LandingFileError as exc:
                errors.append(str(exc))
        per_file = dict(con.execute("SELECT _source_file, count(*) FROM labels.churn GROUP BY 1").fetchall())
        keys = con.execute("SELECT count(*) - count(DISTINCT (customer_id, event_ts)) FROM labels.churn").fetchone()[0]

    assert keys == 0  # nothing doubled
    assert all(per_file.pop(str(g)) == 30 for g in good), per_file  # the good files load, each label once
    last = loads[-1]
    notes = " | ".join(n for load in loads for n in load.notes)
    if case.outcome == "refused":
        assert len(errors) == 1 and str(bad) in errors[0] and re.search(case.expect, errors[0]), errors
        assert per_file == {}
    else:
        assert errors == []
    if case.outcome == "unreadable":
        assert list(last.unreadable) == [str(bad)], last.unreadable
        assert last.unreadable[str(bad)].startswith(str(bad)) and re.search(case.expect, last.unreadable[str(bad)])
        assert per_file == {}
    if case.outcome == "accepted":
        assert last.unreadable == {} and sum(per_file.values()) == case.rows, per_file
        if case.expect:
            assert re.search(case.expect, notes), notes
    if case.outcome == "outside":
        assert last.unreadable == {} and per_file == {}
        assert last.outside == {str(bad): case.rows}


def test_every_failing_label_file_of_a_day_is_named(churn, data_dir):
    """Issue 16 item 5: a day two label files fail named only the first."""
    folder = churn.labels.path()
    folder.mkdir(parents=True)
    (folder / "a_two.csv").write_text(rows(3) + "C9,2026-01-03 11:00:00,2\n")
    (folder / "b_noentity.csv").write_text("event_ts,churned\n2026-01-03 10:00:00,1\n")
    (folder / "c_good.csv").write_text(rows(3))
    start = dt.datetime(2026, 1, 3)
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        with pytest.raises(landing.LandingFileError) as exc:
            labels.load_labels_window(con, churn, start, start + dt.timedelta(days=1), last_day=LAST)
        stored = con.execute("SELECT count(*) FROM labels.churn").fetchone()[0]
    message = str(exc.value)
    assert stored == 0 and "2 label file(s) cannot be loaded" in message, message
    assert re.search(r"a_two\.csv: column 'churned' must be 0 or 1", message), message
    assert re.search(r"b_noentity\.csv: missing required column\(s\) \['customer_id'\]", message), message
    assert "c_good.csv" not in message


def _materialize(asset, day, data_dir, instance):
    import dagster as dg

    from mlops_assets.chain.resources import DuckDBWarehouse

    result = dg.materialize([asset], partition_key=day.isoformat(), instance=instance,
                            resources={"warehouse": DuckDBWarehouse(database=str(data_dir / "w.duckdb"))})
    logs = [e.user_message for e in instance.all_logs(result.run_id)]
    return result.get_asset_materialization_events()[0].materialization.metadata, logs


def test_a_label_file_dated_before_the_first_partition_is_reported_by_name(churn, data_dir):
    """Issue 16 item 5: a label file whose events all fall before first_day was dropped without
    a word in the run: its labels are counted, and a warning names the file."""
    import dagster as dg

    from mlops_assets.chain.labels import build_labels_asset

    folder = churn.labels.path()
    write_due_labels(folder, day_range(D1, 1), SimulationConfig(rows_per_day=30), D1 + dt.timedelta(days=9), 7)
    (folder / "old.csv").write_text(f"{HEADER}\nC1,2020-01-03 10:00:00,1\nC2,2025-12-31 23:00:00,0\n")
    md, logs = _materialize(build_labels_asset(churn), D1, data_dir, dg.DagsterInstance.ephemeral())
    assert md["labels_outside_partitions"].value == 2
    assert md["files_with_labels_outside"].value == {"old.csv": 2}
    assert any("old.csv: 2 label(s) dated before 2026-01-01" in m for m in logs), logs
