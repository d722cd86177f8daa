"""What the benchmarks share: percentiles, a scratch PostgreSQL database, the app as deployed."""

import os
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

# The project, for the benchmarks that import it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values, p):
    """The p-th percentile (nearest rank) of `values`."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def create_database(base: str, prefix: str) -> str:
    """A new, empty database on the server of `base` (which is left untouched); its URL."""
    url = sa.engine.make_url(base).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(base: str, url: str) -> None:
    """Drop the database at `url`, ending its sessions first, through the server of `base`."""
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(
        sa.engine.make_url(base).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def scratch_pg(base: str, prefix: str = "bench"):
    """(url, drop): a scratch database beside `base`, and the function that drops it."""
    url = create_database(base, prefix)
    return url, lambda: drop_database(base, url)


def make_app(url: str, instance_path: str, **config):
    """The app on `url` with the engine options it is deployed with (fieldapp/config.py)."""
    from fieldapp import create_app

    os.environ["FIELDAPP_INSTANCE_PATH"] = instance_path
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "bench",
            "WORKER_IN_PROCESS": False,
            "RATELIMIT_ENABLED": False,
            "VAPID_PRIVATE_KEY_FILE": os.path.join(instance_path, "vapid.pem"),
            **config,
        }
    )
