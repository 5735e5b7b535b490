"""`mlops-assets prepare` on the shared profile creates the databases when missing, also when
several processes do it at once (e.g. the code location's and the daemon's pods starting)."""
import threading
import uuid

import pytest

from mlops_assets.warehouse.shared import ensure_databases


@pytest.mark.integration
def test_concurrent_prepares_all_succeed_and_create_each_database_once(postgres_url):
    from mlops_assets_tests.pg_server import drop_database

    for _ in range(3):  # the collision needs the CREATEs to overlap: a few rounds make it likely
        url = f"{postgres_url}/race_{uuid.uuid4().hex[:8]}"
        created, errors = [], []

        def prepare():
            try:
                created.extend(ensure_databases({"warehouse": url}, log=lambda m: None))
            except Exception as exc:  # collected: an error in a thread would not fail the test
                errors.append(exc)

        threads = [threading.Thread(target=prepare) for _ in range(4)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not errors, errors
            assert len(created) == 1, created
        finally:
            drop_database(url)
