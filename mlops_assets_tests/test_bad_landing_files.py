"""Broken and hostile landing files beside good ones, on a real DuckDB file.

Each case writes two good day files (2026-01-01 and -02, 30 rows each) and one bad thing for
2026-01-03, then loads the three days one at a time with `landing.load_window`. Every case
proves: the bad file gets a clear error naming it and the problem (or is a documented
acceptance), each good file's 30 rows are in raw exactly once, and raw holds nothing else
than the good rows plus the rows a case accepts.

Outcomes:
- unreadable: the file is left out of every day and named in `WindowLoad.unreadable` (the raw
  asset's `landing_files_readable` check fails with it); other days load.
- refused: the day the file holds fails with LandingFileError naming the file; nothing of
  that day is written, other days load.
- accepted: the rows load (with a note when something was ignored).
- outside: the rows are dated where no partition is; they are counted per file in `outside`.
"""
import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from mlops_assets.ingest import landing
from mlops_assets.simulate.churn import SimulationConfig, day_range, write_days

D1 = dt.date(2026, 1, 1)
LAST = dt.date(2026, 1, 31)  # the last partition, for the rows-outside count
KEYS = "customer_id,event_ts,churned"
# The raw columns of the churn features (the dbt model derives the others): every file carries
# them, as the good files do; a file lacking one is refused once raw.churn has it.
FEATURES = {"tenure_months": "9", "monthly_charges": "53.19", "total_charges": "486.73", "num_support_calls": "0",
            "avg_session_minutes": "13.4", "days_since_last_login": "2", "num_logins_30d": "14",
            "data_usage_gb": "8.61", "discount_pct": "0.0", "age": "50", "late_payments_12m": "0",
            "satisfaction_score": "2.8", "plan_type": "standard", "contract": "annual", "region": "east",
            "payment_method": "bank_transfer", "device": "desktop"}
HEADER = KEYS + "," + ",".join(FEATURES)
HOSTILE = ("x\" AS VARCHAR)) FROM (SELECT 1 AS x); COPY (SELECT 'owned' AS v) TO '/tmp/owned.csv'; "
           "SELECT 0, 'a', --")


def line(entity: str, ts: str, target, drop: tuple[str, ...] = (), **values) -> str:
    """One data line under HEADER (columns in `drop` left out, as in header(drop))."""
    return ",".join([entity, ts, str(target), *(values.get(k, v) for k, v in FEATURES.items() if k not in drop)])


def header(drop: tuple[str, ...] = (), rename: dict[str, str] | None = None) -> str:
    cols = [c for c in HEADER.split(",") if c not in drop]
    return ",".join((rename or {}).get(c, c) for c in cols)


def rows(n: int, header: str = HEADER, sep: str = "\n", drop: tuple[str, ...] = ()) -> str:
    return sep.join([header, *(line(f"C{i}", f"2026-01-03 10:{i:02d}:00", i % 2, drop) for i in range(n))]) + sep


@dataclass
class Case:
    name: str  # file (or link, or folder) name in the landing folder
    outcome: str  # unreadable | refused | accepted | outside
    expect: str = ""  # regex the error or note must match
    rows: int = 0  # rows accepted (accepted) or counted outside (outside)


def write_text(text, encoding="utf-8"):
    return lambda path, _tmp: path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)


def symlink_out(path, tmp):
    target = tmp / "elsewhere" / "secret.csv"
    target.parent.mkdir()
    target.write_text(rows(5))
    path.symlink_to(target)


def dangling_link(path, tmp):
    path.symlink_to(path.parent / "gone.csv")


def directory(path, _tmp):
    path.mkdir()
    (path / "inner.csv").write_text(rows(3))


def no_permission(path, _tmp):
    path.write_text(rows(3))
    path.chmod(0)


def parquet_beside(path, _tmp):
    import pandas as pd

    pd.DataFrame({"customer_id": ["P1"], "event_ts": [dt.datetime(2026, 1, 3, 9)], "churned": [1]}).to_parquet(path)


TS = "2026-01-03 10:00:00"
NUL_ENTITY = "C\x001"
UPPER = {c: c.upper() for c in HEADER.split(",")}

CASES = {
    "hostile header": (Case("hostile.csv", "unreadable", r"column name .*COPY .* is not a plain identifier"),
                       write_text(f'{HEADER},"{HOSTILE.replace(chr(34), chr(34) * 2)}"\n{line("C1", TS, 1)},1\n')),
    "symlink out of the folder": (Case("stolen.csv", "unreadable", r"symbolic link to .*secret\.csv, outside the "
                                       r"landing folder"), symlink_out),
    "dangling symlink": (Case("dangling.csv", "unreadable", "symbolic link to a missing file"), dangling_link),
    "glob star in the name": (Case("churn_*.csv", "accepted", rows=10), write_text(rows(10))),
    "glob class in the name": (Case("churn_[2].csv", "accepted", rows=7), write_text(rows(7))),
    "half-written (cut mid-row)": (Case("cut.csv", "unreadable", r"could not be parsed|must hold timestamps"),
                                   write_text(rows(5) + "C9,2026-01-0")),
    "latin-1 bytes": (Case("latin.csv", "unreadable", r"not UTF-8 \(byte 0xe9"),
                      write_text(f"{HEADER}\n{line('Cé', TS, 1)}\n", "latin-1")),
    "0 bytes": (Case("empty.csv", "unreadable", r"empty file \(0 bytes\)"), write_text(b"")),
    # A header and no rows loads nothing, and says so (issue 16 item 5).
    "header only": (Case("header.csv", "accepted", r"header\.csv: a header and no rows; nothing to load", rows=0),
                    write_text(HEADER + "\n")),
    "duplicate column names": (Case("dup.csv", "unreadable", r"duplicate column name\(s\) \['event_ts'\]"),
                               write_text("customer_id,event_ts,event_ts,churned\nC1,2026-01-03 10:00:00,"
                                          "2026-01-03 11:00:00,1\n")),
    # Names differing only in case are one name to DuckDB and dbt: in one file, two of them are
    # a duplicate (issue 16 item 4).
    "one column twice, in two cases": (
        Case("twice.csv", "unreadable",
             r"column names differing only in case \[\['tenure_months', 'TENURE_MONTHS'\]\]"),
        write_text(f"{HEADER},TENURE_MONTHS\n{line('C1', TS, 1)},5\n")),
    "missing timestamp column": (Case("nots.csv", "unreadable", r"missing required column\(s\) \['event_ts'\]"),
                                 write_text(f"{header(drop=('event_ts',))}\nC1,1,{','.join(FEATURES.values())}\n")),
    "unparseable timestamps": (Case("badts.csv", "unreadable", r"'event_ts' must hold timestamps; 1 value\(s\).*"
                                    r"'yesterday'"), write_text(rows(3) + line("C9", "yesterday", 1) + "\n")),
    "missing target column": (Case("notarget.csv", "refused", r"missing required column\(s\) \['churned'\]"),
                              write_text(f"{header(drop=('churned',))}\nC1,{TS},{','.join(FEATURES.values())}\n")),
    # A feature column raw.churn has, missing from a file: refused, not loaded as NULL (issue 16 item 4).
    "missing feature column": (
        Case("nofeature.csv", "refused", r"missing required column\(s\) \['tenure_months', 'region'\]"),
        write_text(rows(3, header(drop=("tenure_months", "region")), drop=("tenure_months", "region")))),
    # Names differing only in case from raw.churn's load into its columns (issue 16 item 4).
    "upper-case column names": (Case("upper.csv", "accepted", rows=3), write_text(rows(3, header(rename=UPPER)))),
    "mixed-case feature column": (Case("mixed.csv", "accepted", rows=2),
                                  write_text(rows(2, header(rename={"tenure_months": "Tenure_Months"})))),
    "target 2": (Case("two.csv", "refused", r"'churned' must be 0 or 1; 1 row\(s\) are not \(e\.g\. '2'\)"),
                 write_text(rows(3) + line("C9", "2026-01-03 11:00:00", 2) + "\n")),
    "target yes": (Case("yes.csv", "refused", r"'churned' must be 0 or 1.*a yes/no or true/false value"),
                   write_text(f"{HEADER}\n{line('C1', TS, 'yes')}\n")),
    "fraction into an integer column": (
        Case("frac.csv", "refused", r"column 'tenure_months' has 1 non-integer value\(s\) \(e\.g\. '1\.5'\)"),
        write_text(f"{HEADER}\n{line('C1', TS, 1, tenure_months='1.5')}\n")),
    "N/A into an integer column": (
        Case("na.csv", "refused", r"column 'tenure_months' must hold whole numbers.*not numbers \(e\.g\. 'N/A'\)"),
        write_text(f"{HEADER}\n{line('C1', TS, 1, tenure_months='N/A')}\n")),
    "extra column": (Case("extra.csv", "accepted", r"extra\.csv: column\(s\) \['surprise'\] are not in raw\.churn; "
                                                   r"ignored", rows=2),
                     write_text(f"{HEADER},surprise\n{line('C1', TS, 1)},a\n"
                                f"{line('C2', '2026-01-03 11:00:00', 0)},b\n")),
    "semicolon delimiter": (Case("semi.csv", "unreadable", r"seems to be separated by ';', expected ','"),
                            write_text(rows(3, HEADER.replace(",", ";")).replace(",", ";"))),
    "byte order mark": (Case("bom.csv", "accepted", rows=3), write_text("\ufeff" + rows(3))),
    "CRLF line ends": (Case("crlf.csv", "accepted", rows=3), write_text(rows(3, sep="\r\n"))),
    "quoted newline in a field": (Case("quoted.csv", "accepted", rows=1),
                                  write_text(f'{HEADER},note\n{line("C1", TS, 1)},"two\nlines"\n')),
    "huge field": (Case("huge.csv", "unreadable", r"could not be parsed.*Maximum line size"),
                   write_text(rows(2) + line("C" + "x" * 3_000_000, TS, 1) + "\n")),
    "NUL byte in a value (kept as is)": (Case("nul.csv", "accepted", rows=1),
                                         write_text(f"{HEADER}\n{line(NUL_ENTITY, TS, 1)}\n")),
    "directory named x.csv": (Case("x.csv", "accepted", r"x\.csv: not a regular file", rows=0), directory),
    "permission denied": (Case("locked.csv", "unreadable", r"Permission denied|cannot be read"), no_permission),
    "timestamps in 2099": (Case("future.csv", "outside", rows=2),
                           write_text(f"{HEADER}\n{line('C1', '2099-01-03 10:00:00', 1)}\n"
                                      f"{line('C2', '2099-06-03 10:00:00', 0)}\n")),
    "timestamps before first_day": (Case("early.csv", "outside", rows=1),
                                    write_text(f"{HEADER}\n{line('C1', '2020-01-03 10:00:00', 1)}\n")),
    "parquet under a *.csv pattern": (Case("churn_2026-01-03.parquet", "accepted",
                                           r"not matched by the landing pattern '\*\.csv'", rows=0), parquet_beside),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_bad_file_beside_good_ones(kind, churn, data_dir, tmp_path):
    case, write = CASES[kind]
    if kind == "permission denied" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    folder = churn.landing.path()
    good = write_days(folder, day_range(D1, 2), SimulationConfig(rows_per_day=30))
    bad = folder / case.name
    if kind == "hostile header":
        Path("/tmp/owned.csv").unlink(missing_ok=True)
    write(bad, tmp_path)

    loads, errors = [], []
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        for day in day_range(D1, 3):
            start = dt.datetime.combine(day, dt.time())
            try:
                loads.append(landing.load_window(con, churn, start, start + dt.timedelta(days=1), last_day=LAST))
            except landing.LandingFileError as exc:
                errors.append(str(exc))
        per_file = dict(con.execute("SELECT _source_file, count(*) FROM raw.churn GROUP BY 1").fetchall())
        columns = [r[0] for r in con.execute("DESCRIBE raw.churn").fetchall()]
        empty = con.execute(f"SELECT {', '.join(f'count(*) - count({c})' for c in FEATURES)} FROM raw.churn").fetchone()

    # raw.churn keeps the documented names, and no row lost a feature to a column name's case
    assert [c for c in columns if c in FEATURES] == list(FEATURES), columns
    assert not any(empty), dict(zip(FEATURES, empty))
    # the good files load, each row exactly once, whatever the bad file is
    assert all(per_file.pop(str(g)) == 30 for g in good), per_file
    last = loads[-1]
    notes = " | ".join(n for load in loads for n in load.notes)
    if case.outcome == "refused":
        assert len(errors) == 1 and str(bad) in errors[0] and re.search(case.expect, errors[0]), errors
        assert per_file == {}
    else:
        assert errors == []
    if case.outcome == "unreadable":
        assert list(last.unreadable) == [str(bad)], last.unreadable
        assert last.unreadable[str(bad)].startswith(str(bad)) and re.search(case.expect, last.unreadable[str(bad)]), \
            last.unreadable
        assert per_file == {}
    if case.outcome == "accepted":
        assert last.unreadable == {} and sum(per_file.values()) == case.rows, per_file
        if case.expect:
            assert re.search(case.expect, notes), notes
    if case.outcome == "outside":
        assert last.unreadable == {} and per_file == {}
        assert last.outside == {str(bad): case.rows}
    if kind == "hostile header":  # no statement from the header ran
        assert not Path("/tmp/owned.csv").exists()


def _load_days(con, uc, days):
    loads, errors = [], []
    for day in days:
        start = dt.datetime.combine(day, dt.time())
        try:
            loads.append(landing.load_window(con, uc, start, start + dt.timedelta(days=1), last_day=LAST))
        except landing.LandingFileError as exc:
            errors.append(str(exc))
    return loads, errors


def test_a_first_file_in_upper_case_does_not_empty_the_column_for_later_files(churn, data_dir):
    """Issue 16 item 4: the first file named TENURE_MONTHS; raw.churn took that name and every
    later file's tenure_months loaded as NULL (and training failed far away). The raw table
    takes the use case's names, whatever case the first file used."""
    folder = churn.landing.path()
    folder.mkdir(parents=True)
    (folder / "first.csv").write_text(rows(5, header(rename={"tenure_months": "TENURE_MONTHS", "region": "Region"}))
                                      .replace("2026-01-03", "2026-01-01"))
    write_days(folder, [D1 + dt.timedelta(days=1)], SimulationConfig(rows_per_day=30))
    (folder / "later.csv").write_text(rows(4, header(rename={"tenure_months": "TENURE_MONTHS"})))
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        loads, errors = _load_days(con, churn, day_range(D1, 3))
        columns = [r[0] for r in con.execute("DESCRIBE raw.churn").fetchall()]
        per_day = con.execute("SELECT CAST(event_ts AS DATE), count(*), count(tenure_months), count(region) "
                              "FROM raw.churn GROUP BY 1 ORDER BY 1").fetchall()
    assert errors == [] and all(not load.notes for load in loads), (errors, [load.notes for load in loads])
    assert "tenure_months" in columns and "region" in columns and "TENURE_MONTHS" not in columns, columns
    assert [(n, t, r) for _, n, t, r in per_day] == [(5, 5, 5), (30, 30, 30), (4, 4, 4)]


def test_every_failing_file_of_a_day_is_named(churn, data_dir):
    """Issue 16 item 5: a day two files fail named only the first."""
    folder = churn.landing.path()
    write_days(folder, day_range(D1, 1), SimulationConfig(rows_per_day=30))
    (folder / "a_two.csv").write_text(rows(3) + line("C9", "2026-01-03 11:00:00", 2) + "\n")
    (folder / "b_nofeature.csv").write_text(rows(3, header(drop=("age",)), drop=("age",)))
    (folder / "c_good.csv").write_text(rows(3))
    with duckdb.connect(str(data_dir / "w.duckdb")) as con:
        _, errors = _load_days(con, churn, [D1, D1 + dt.timedelta(days=2)])
        stored = con.execute("SELECT count(*) FROM raw.churn WHERE CAST(event_ts AS DATE) = '2026-01-03'").fetchone()[0]
    assert len(errors) == 1 and stored == 0, (errors, stored)
    assert "2 landing file(s) cannot be loaded" in errors[0], errors
    assert re.search(r"a_two\.csv: column 'churned' must be 0 or 1", errors[0]), errors
    assert re.search(r"b_nofeature\.csv: missing required column\(s\) \['age'\]", errors[0]), errors
    assert "c_good.csv" not in errors[0]
