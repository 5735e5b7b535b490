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
from mlops_assets.use_cases.config import load_use_cases

D1 = dt.date(2026, 1, 1)
LAST = dt.date(2026, 1, 31)  # the last partition, for the rows-outside count
HEADER = "customer_id,event_ts,churned"
ROW = "C{i},2026-01-03 10:{i:02d}:00,{t}"
HOSTILE = ("x\" AS VARCHAR)) FROM (SELECT 1 AS x); COPY (SELECT 'owned' AS v) TO '/tmp/owned.csv'; "
           "SELECT 0, 'a', --")


def rows(n: int, header: str = HEADER, sep: str = "\n") -> str:
    return sep.join([header, *(ROW.format(i=i, t=i % 2) for i in range(n))]) + sep


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


CASES = {
    "hostile header": (Case("hostile.csv", "unreadable", r"column name .*COPY .* is not a plain identifier"),
                       write_text(f'{HEADER},"{HOSTILE.replace(chr(34), chr(34) * 2)}"\nC1,2026-01-03 10:00:00,1,1\n')),
    "symlink out of the folder": (Case("stolen.csv", "unreadable", r"symbolic link to .*secret\.csv, outside the "
                                       r"landing folder"), symlink_out),
    "dangling symlink": (Case("dangling.csv", "unreadable", "symbolic link to a missing file"), dangling_link),
    "glob star in the name": (Case("churn_*.csv", "accepted", rows=10), write_text(rows(10))),
    "glob class in the name": (Case("churn_[2].csv", "accepted", rows=7), write_text(rows(7))),
    "half-written (cut mid-row)": (Case("cut.csv", "unreadable", r"could not be parsed|must hold timestamps"),
                                   write_text(rows(5) + "C9,2026-01-0")),
    "latin-1 bytes": (Case("latin.csv", "unreadable", r"not UTF-8 \(byte 0xe9"),
                      write_text(f"{HEADER}\nCé,2026-01-03 10:00:00,1\n", "latin-1")),
    "0 bytes": (Case("empty.csv", "unreadable", r"empty file \(0 bytes\)"), write_text(b"")),
    "header only": (Case("header.csv", "accepted", rows=0), write_text(HEADER + "\n")),
    "duplicate column names": (Case("dup.csv", "unreadable", r"duplicate column name\(s\) \['event_ts'\]"),
                               write_text("customer_id,event_ts,event_ts,churned\nC1,2026-01-03 10:00:00,"
                                          "2026-01-03 11:00:00,1\n")),
    "missing timestamp column": (Case("nots.csv", "unreadable", r"missing required column\(s\) \['event_ts'\]"),
                                 write_text("customer_id,churned\nC1,1\n")),
    "unparseable timestamps": (Case("badts.csv", "unreadable", r"'event_ts' must hold timestamps; 1 value\(s\).*"
                                    r"'yesterday'"), write_text(rows(3) + "C9,yesterday,1\n")),
    "missing target column": (Case("notarget.csv", "refused", r"missing required column\(s\) \['churned'\]"),
                              write_text("customer_id,event_ts\nC1,2026-01-03 10:00:00\n")),
    "target 2": (Case("two.csv", "refused", r"'churned' must be 0 or 1; 1 row\(s\) are not \(e\.g\. '2'\)"),
                 write_text(rows(3) + "C9,2026-01-03 11:00:00,2\n")),
    "target yes": (Case("yes.csv", "refused", r"'churned' must be 0 or 1.*a yes/no or true/false value"),
                   write_text(f"{HEADER}\nC1,2026-01-03 10:00:00,yes\n")),
    "fraction into an integer column": (
        Case("frac.csv", "refused", r"column 'tenure_months' has 1 non-integer value\(s\) \(e\.g\. '1\.5'\)"),
        write_text(f"{HEADER},tenure_months\nC1,2026-01-03 10:00:00,1,1.5\n")),
    "N/A into an integer column": (
        Case("na.csv", "refused", r"column 'tenure_months' must hold whole numbers.*not numbers \(e\.g\. 'N/A'\)"),
        write_text(f"{HEADER},tenure_months\nC1,2026-01-03 10:00:00,1,N/A\n")),
    "extra column": (Case("extra.csv", "accepted", r"extra\.csv: column\(s\) \['surprise'\] are not in raw\.churn; "
                                                   r"ignored", rows=2),
                     write_text(f"{HEADER},surprise\nC1,2026-01-03 10:00:00,1,a\nC2,2026-01-03 11:00:00,0,b\n")),
    "semicolon delimiter": (Case("semi.csv", "unreadable", r"seems to be separated by ';', expected ','"),
                            write_text(rows(3, HEADER.replace(",", ";")).replace(",", ";"))),
    "byte order mark": (Case("bom.csv", "accepted", rows=3), write_text("\ufeff" + rows(3))),
    "CRLF line ends": (Case("crlf.csv", "accepted", rows=3), write_text(rows(3, sep="\r\n"))),
    "quoted newline in a field": (Case("quoted.csv", "accepted", rows=1),
                                  write_text(f'{HEADER},note\nC1,2026-01-03 10:00:00,1,"two\nlines"\n')),
    "huge field": (Case("huge.csv", "unreadable", r"could not be parsed.*Maximum line size"),
                   write_text(rows(2) + "C" + "x" * 3_000_000 + ",2026-01-03 10:00:00,1\n")),
    "NUL byte in a value (kept as is)": (Case("nul.csv", "accepted", rows=1),
                                         write_text(f"{HEADER}\nC\x001,2026-01-03 10:00:00,1\n")),
    "directory named x.csv": (Case("x.csv", "accepted", r"x\.csv: not a regular file", rows=0), directory),
    "permission denied": (Case("locked.csv", "unreadable", r"Permission denied|cannot be read"), no_permission),
    "timestamps in 2099": (Case("future.csv", "outside", rows=2),
                           write_text(f"{HEADER}\nC1,2099-01-03 10:00:00,1\nC2,2099-06-03 10:00:00,0\n")),
    "timestamps before first_day": (Case("early.csv", "outside", rows=1),
                                    write_text(f"{HEADER}\nC1,2020-01-03 10:00:00,1\n")),
    "parquet under a *.csv pattern": (Case("churn_2026-01-03.parquet", "accepted",
                                           r"not matched by the landing pattern '\*\.csv'", rows=0), parquet_beside),
}


@pytest.fixture
def churn(data_dir):
    (uc,) = [u for u in load_use_cases() if u.name == "churn"]
    return uc


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
