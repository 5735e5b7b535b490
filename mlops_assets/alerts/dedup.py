"""Which failed checks to announce: a day's check (drift, performance) is alerted once per use
case, day and check, and again only after its outcome changed (a pass in between). Re-runs of a
day, a backfill over it and automation re-reports do not repeat the alert. Checks without a day
(promotion gates: each candidate is its own event) are always announced.

Pure: the state is a plain mapping kept in the alert sensor's cursor."""
from __future__ import annotations

from collections.abc import Iterable, MutableMapping

# Outcomes remembered (most recent first out): a year of days for a few checks of many use cases.
MAX_REMEMBERED = 20_000


def outcome_key(asset: str, check: str, day: str) -> str:
    return f"{asset}|{check}|{day}"


def to_announce(last: MutableMapping[str, bool], evaluations: Iterable[tuple[str, str, str | None, bool]]
                ) -> list[int]:
    """Positions of the evaluations (asset, check, day or None, passed), in event order, whose
    failure is to be announced; updates `last` with every day's newest outcome."""
    announce = []
    for i, (asset, check, day, passed) in enumerate(evaluations):
        if day is None:
            if not passed:
                announce.append(i)
            continue
        key = outcome_key(asset, check, day)
        if not passed and last.get(key) is not False:
            announce.append(i)
        last.pop(key, None)  # re-insert: the dict's order is recency
        last[key] = passed
    while len(last) > MAX_REMEMBERED:
        last.pop(next(iter(last)))
    return announce
