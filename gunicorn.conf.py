"""gunicorn settings for Fieldapp: `gunicorn -c gunicorn.conf.py 'fieldapp:create_app()'`.

gevent workers: an open live stream (fieldapp/live) is a greenlet waiting on a queue, not a
thread, so thousands stay open while intake requests are answered at once. psycopg 3 (>=
3.1.14) waits cooperatively once gevent has patched the standard library, as the gevent worker
does before the app loads; the outbox worker's send pool threads become greenlets too.
"""

import importlib.util
import os
from pathlib import Path


def _limits():
    # Loaded alone, not through the fieldapp package: nothing may import ssl, urllib3 or the
    # database driver before the gevent worker has patched the standard library.
    path = Path(__file__).resolve().parent / "fieldapp" / "live" / "limits.py"
    spec = importlib.util.spec_from_file_location("fieldapp_limits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bind = os.environ.get("FIELDAPP_BIND", "127.0.0.1:8000")
worker_class = "gevent"
# One process per core; each holds its own share of the streams and one event reader.
workers = int(os.environ.get("FIELDAPP_WEB_WORKERS", str(os.cpu_count() or 1)))
capacity = int(os.environ.get("FIELDAPP_LIVE_CAPACITY", "5000"))
# Connections a worker accepts at once: its share of the streams plus room for requests.
worker_connections = capacity // max(workers, 1) + 500
# Streams end themselves after ~55 s; a worker blocked this long (no heartbeat) is restarted.
timeout = 60
graceful_timeout = 10
keepalive = 5
accesslog = os.environ.get("FIELDAPP_ACCESS_LOG") or None
# Fieldapp's own INFO lines (the SMS log backend among them) reach the error log.
LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING", "handlers": ["console"]},
    "loggers": {
        "fieldapp": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"}
    },
}


def on_starting(server):
    warning = _limits().check_fd_limit(capacity)
    if warning:
        server.log.warning(warning)


def post_worker_init(worker):
    # The embedded start (SQLite): the outbox worker runs inside the web worker.
    app = worker.wsgi
    if getattr(app, "config", {}).get("WORKER_IN_PROCESS"):
        from fieldapp import worker as outbox_worker

        outbox_worker.start_thread(app)
