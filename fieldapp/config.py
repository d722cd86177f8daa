"""Settings from environment variables, with embedded defaults for a one-command start."""

import os
import secrets
import sys
from pathlib import Path


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_path: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept under instance/."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    if {"--help", "-h"} & set(sys.argv[1:]):
        # Only printing help: no side effects, nothing written under instance/.
        return secrets.token_hex(32)
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def database_settings(url: str) -> dict:
    """The SQLAlchemy URI with a driver name, and engine options that suit the database."""
    # Heroku-style URLs still say postgres://; SQLAlchemy wants the psycopg 3 driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith("sqlite"):
        # Wait for a busy writer instead of failing at once; the worker thread writes too.
        options = {"connect_args": {"timeout": 30}}
    else:
        # pre_ping: a database restart costs one reconnect, not a 500 for the next request.
        options = {"pool_pre_ping": True, "pool_recycle": 1800}
    # hide_parameters: SQL errors and logs never quote bound values (names, phones).
    options["hide_parameters"] = True
    return {"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": options}


def load(instance_path: str) -> dict:
    """Build the configuration mapping for create_app()."""
    instance = Path(instance_path)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'fieldapp.db'}"
    is_sqlite = database_url.startswith("sqlite")
    return {
        "SECRET_KEY": _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "VAPID_PRIVATE_KEY_FILE": os.environ.get(
            "VAPID_PRIVATE_KEY_FILE", str(instance / "vapid_private.pem")
        ),
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT", "mailto:fieldapp@localhost"),
        "WORKER_IN_PROCESS": _bool(os.environ.get("FIELDAPP_WORKER_IN_PROCESS"), is_sqlite),
        # A new warning's first push leaves from the intake request itself (express.py).
        "EXPRESS_PUSH": _bool(os.environ.get("FIELDAPP_EXPRESS_PUSH"), True),
        "SMS_BACKEND": os.environ.get("FIELDAPP_SMS_BACKEND", "log"),
        "SMS_HTTP_URL": os.environ.get("FIELDAPP_SMS_HTTP_URL", ""),
        "SMS_HTTP_TEMPLATE": os.environ.get(
            "FIELDAPP_SMS_HTTP_TEMPLATE", '{"to": "{phone}", "text": "{text}"}'
        ),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "INTAKE_RATE_LIMIT": os.environ.get("FIELDAPP_INTAKE_RATE_LIMIT", "600/minute"),
        # A flood guard per address; failed logins are throttled per account + address
        # (auth/throttle.py), so a shift behind one NAT address logs in at once.
        "LOGIN_RATE_LIMIT": os.environ.get("FIELDAPP_LOGIN_RATE_LIMIT", "120/minute"),
        # Opening residents' warning pages, per user: ample for field work and the board,
        # a wall against paging through a station's residents.
        "RESIDENT_READ_RATE_LIMIT": os.environ.get(
            "FIELDAPP_RESIDENT_READ_RATE_LIMIT", "30/minute;300/hour"
        ),
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        # Live streams (SSE, fieldapp/live) end after this long and the browser reconnects with
        # Last-Event-ID; while open a stream holds a queue, not a thread or a connection.
        "STREAM_SECONDS": float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55")),
        "STREAM_KEEPALIVE_S": 15.0,
        "BOARD_STREAM_SECONDS": float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55")),
        # Open streams one user may hold per process (per kind: app, board); one more is 429.
        "LIVE_STREAMS_PER_USER": int(os.environ.get("FIELDAPP_LIVE_STREAMS_PER_USER", "3")),
        # Events a stream may have waiting unsent before it is dropped as too slow.
        "LIVE_QUEUE": 256,
        # SQLite has no NOTIFY: the process's one reader polls the event log this often.
        "LIVE_POLL_S": float(os.environ.get("FIELDAPP_LIVE_POLL_S", "0.25")),
        # Open streams this host is sized for: the file-descriptor limit is checked against it.
        "LIVE_CAPACITY": int(os.environ.get("FIELDAPP_LIVE_CAPACITY", "5000")),
        # Push endpoints go only to the known Web Push services (outbound_rule.py); these
        # host names (`*.example.org` for subdomains) are admitted besides them.
        "PUSH_SERVICE_HOSTS": _list(os.environ.get("FIELDAPP_PUSH_SERVICE_HOSTS")),
        # Tests only: admit a push service on this machine (loopback, plain http too).
        "PUSH_ALLOW_INSECURE_ENDPOINTS": _bool(
            os.environ.get("FIELDAPP_PUSH_ALLOW_INSECURE_ENDPOINTS"), False
        ),
        # Tests only: admit a webhook receiver on this machine (loopback, plain http too).
        "WEBHOOK_ALLOW_INSECURE_URLS": _bool(
            os.environ.get("FIELDAPP_WEBHOOK_ALLOW_INSECURE_URLS"), False
        ),
        # Non-public networks a centre's webhook receiver may sit on (CIDRs, comma-separated),
        # e.g. a government intranet; never needed for a public receiver.
        "WEBHOOK_ALLOW_NETWORKS": _list(os.environ.get("FIELDAPP_WEBHOOK_ALLOW_NETWORKS")),
        # Devices one account may register for alerts, and how often it may ask for a test.
        "PUSH_MAX_SUBSCRIPTIONS": int(os.environ.get("FIELDAPP_PUSH_MAX_SUBSCRIPTIONS", "10")),
        "TEST_ALERT_RATE_LIMIT": os.environ.get(
            "FIELDAPP_TEST_ALERT_RATE_LIMIT", "2/minute;6/hour"
        ),
        "INTAKE_MAX_BYTES": 64 * 1024,
        # How far a phone's clock may be off: device times beyond it (before the warning was
        # received, or after now) are refused.
        "DEVICE_CLOCK_SKEW_S": int(os.environ.get("FIELDAPP_DEVICE_CLOCK_SKEW_S", "120")),
        # The chief's map: tile source (fieldapp/tiles.py); none means a plain scaled grid.
        "MAP_TILES": os.environ.get("FIELDAPP_MAP_TILES", ""),
        "MAP_KEY": os.environ.get("FIELDAPP_MAP_KEY", ""),
        "MAP_TILE_URL": os.environ.get("FIELDAPP_MAP_TILE_URL", ""),
        "MAP_ATTRIBUTION": os.environ.get("FIELDAPP_MAP_ATTRIBUTION", ""),
        "MAP_CRS": os.environ.get("FIELDAPP_MAP_CRS", "wgs84"),
        "MAP_SUBDOMAINS": os.environ.get("FIELDAPP_MAP_SUBDOMAINS", ""),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Behind a reverse proxy: trust one hop's X-Forwarded-For/-Proto/-Host, so HTTPS is seen
        # (HSTS, secure redirects) and rate limits key on the client, not on the proxy.
        "PROXY_FIX": _bool(os.environ.get("FIELDAPP_PROXY_FIX"), False),
        "SESSION_COOKIE_SECURE": _bool(os.environ.get("FIELDAPP_SECURE_COOKIES"), False),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": int(os.environ.get("FIELDAPP_SESSION_HOURS", "12")) * 3600,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "LANGUAGES": ["zh_CN", "en"],
        "DISPLAY_TIMEZONE": "Asia/Shanghai",
    }
