"""Settings from environment variables, with embedded defaults for a one-command start."""

import os
import secrets
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
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


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
        "LOGIN_RATE_LIMIT": os.environ.get("FIELDAPP_LOGIN_RATE_LIMIT", "10/minute"),
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        # Live streams (SSE) end after this long and the browser reconnects, so a wall screen
        # or an open app never holds a server thread for ever.
        "STREAM_SECONDS": float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55")),
        "STREAM_POLL_S": float(os.environ.get("FIELDAPP_STREAM_POLL_S", "1")),
        "STREAM_KEEPALIVE_S": 15.0,
        "BOARD_STREAM_SECONDS": float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55")),
        "BOARD_STREAM_POLL_S": float(os.environ.get("FIELDAPP_STREAM_POLL_S", "1")),
        # Real push services are https; plain http is for a push service on this machine only.
        "PUSH_ALLOW_INSECURE_ENDPOINTS": _bool(
            os.environ.get("FIELDAPP_PUSH_ALLOW_INSECURE_ENDPOINTS"), False
        ),
        "INTAKE_MAX_BYTES": 64 * 1024,
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
