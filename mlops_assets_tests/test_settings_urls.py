"""Malformed PostgreSQL URLs in the shared profile's settings: one clear error naming the
variable, and never any part of the password (in errors or in what display_uri shows)."""
import pytest

from mlops_assets import settings

SECRET = "s3cretpart"
# Each splits inside the password when parsed as a URL (or has a bad port): urllib's own error
# would then quote a piece of the password as "the port".
MALFORMED = [
    f"postgresql://team:{SECRET}@db.example:abc/x",
    f"postgresql://team:{SECRET}@db.example:99999",
    f"postgresql://team:qz#{SECRET}@db.example:5432",
    f"postgresql://team:qz/{SECRET}@db.example:5432",
    f"postgresql://team:qz?{SECRET}@db.example:5432",
    f"postgresql://team:1234#{SECRET}@db.example:5432",  # '1234' parses as a port
]


@pytest.fixture
def shared(monkeypatch):
    for name in (settings.DAGSTER_PG_URL_ENV, settings.WAREHOUSE_URL_ENV, settings.TRACKING_URI_ENV,
                 *settings.WAREHOUSE_PG_ENV.values()):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(settings.PROFILE_ENV, "shared")
    return monkeypatch


@pytest.mark.parametrize("url", MALFORMED)
def test_a_malformed_server_url_is_a_settings_error_without_the_password(shared, url):
    shared.setenv(settings.POSTGRES_URL_ENV, url)
    for resolve in (settings.postgres_base_url, settings.warehouse_url, settings.resource_env_values):
        with pytest.raises(settings.SettingsError) as err:
            resolve()
        assert settings.POSTGRES_URL_ENV in str(err.value)
        assert SECRET not in str(err.value) and "qz" not in str(err.value)


@pytest.mark.parametrize("url", MALFORMED[2:])
def test_the_cli_reports_it_in_one_line(shared, url, tmp_path):
    from mlops_assets.cli import main

    shared.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    shared.setenv(settings.POSTGRES_URL_ENV, url)
    with pytest.raises(SystemExit) as err:
        main(["fields"])
    assert settings.POSTGRES_URL_ENV in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("url", MALFORMED[2:] + [f"https://u:{SECRET}@mlflow.example:5000/x?token={SECRET}#{SECRET}"])
def test_display_uri_never_shows_a_password_that_urllib_splits(url):
    shown = settings.display_uri(url)
    assert SECRET not in shown, shown
    assert "db.example" in shown or "mlflow.example" in shown


def test_display_uri_keeps_what_has_no_credentials():
    assert settings.display_uri("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"
    assert settings.display_uri("postgresql://db.example:5432/mlops") == "postgresql://db.example:5432/mlops"
    assert settings.display_uri("postgresql+psycopg2://u:p@db:5432/m") == "postgresql+psycopg2://db:5432/m"
    assert settings.display_uri("/plain/path") == "/plain/path"
