"""Application factory: reads as the table of contents of the app."""

import logging
import os
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, g, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from fieldapp import config
from fieldapp.extensions import babel, csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Build the Flask app; `test_config` overrides settings (tests pass their database)."""
    instance_path = os.environ.get("FIELDAPP_INSTANCE_PATH", str(ROOT / "instance"))
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # Before any route is added: every <int:...> in the app, whoever adds it, is bounded.
    app.url_map.converters["int"] = BoundedIntConverter
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
    engine = config.database_settings(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["SQLALCHEMY_DATABASE_URI"] = engine["SQLALCHEMY_DATABASE_URI"]
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", engine["SQLALCHEMY_ENGINE_OPTIONS"])
    if app.config.get("PROXY_FIX"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_commands(app)
    configure_logging(app)
    return app


class BoundedIntConverter(IntegerConverter):
    """`<int:x>` that never matches past a 32-bit id: a huge guessed id is a 404, not a 500.

    Primary keys are INTEGER columns: PostgreSQL refuses to compare them with 2**31 or more
    (integer out of range) and SQLite cannot bind past 2**63 - 1 (OverflowError).
    """

    def __init__(self, map, *args, max=2**31 - 1, **kwargs):  # noqa: A002 - werkzeug's name
        super().__init__(map, *args, max=max, **kwargs)


def register_extensions(app: Flask) -> None:
    from fieldapp import express, i18n
    from fieldapp.auth import sessions

    db.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            sa.event.listen(db.engine, "connect", _sqlite_pragmas)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(
        app,
        locale_selector=i18n.select_locale,
        timezone_selector=lambda: app.config["DISPLAY_TIMEZONE"],
        default_translation_directories=str(ROOT / "translations"),
    )
    i18n.init_app(app)
    login_manager.init_app(app)
    sessions.init_login_manager(login_manager)
    express.init_app(app)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the board read while the worker writes, and NORMAL sync is safe under WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def register_blueprints(app: Flask) -> None:
    from fieldapp.api import bp as api_bp
    from fieldapp.auth import bp as auth_bp
    from fieldapp.board import bp as board_bp
    from fieldapp.core import bp as core_bp
    from fieldapp.desk import bp as desk_bp
    from fieldapp.field import bp as field_bp
    from fieldapp.people import bp as people_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(field_bp, url_prefix="/field")
    app.register_blueprint(board_bp, url_prefix="/board")
    app.register_blueprint(desk_bp, url_prefix="/intake")
    app.register_blueprint(people_bp, url_prefix="/people")
    app.register_blueprint(api_bp, url_prefix="/api/v1")


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register_errorhandlers(app: Flask) -> None:
    messages = {
        400: lambda: _("The request could not be understood."),
        401: lambda: _("Please log in."),
        403: lambda: _("You are not allowed to do that."),
        404: lambda: _("Not found."),
        405: lambda: _("That method is not allowed here."),
        413: lambda: _("The request is too large."),
        429: lambda: _("Too many requests. Please wait a moment and try again."),
        500: lambda: _("Something went wrong on our side. Nothing was saved; please try again."),
        503: lambda: _("The service is temporarily unavailable. Please try again shortly."),
    }

    def render_error(code: int, message: str | None = None):
        message = message or messages[code]()
        if _wants_json():
            return jsonify({"error": message}), code
        return make_response(render_template("errors/error.html", code=code, message=message)), code

    for code in messages:
        if code in (429, 500):
            continue
        app.register_error_handler(code, lambda e, code=code: render_error(code))

    @app.errorhandler(429)
    def too_many_requests(error):
        # Every 429 says when to come back, in the Retry-After header and in the message. A
        # limit that answers for itself (its on_breach) keeps its answer; one with a message
        # of its own (reading residents' pages) says why as well.
        from fieldapp import ratelimits

        if getattr(error, "response", None) is not None:
            return error.response
        wait = ratelimits.retry_after_s()
        limit = getattr(error, "limit", None)
        own = getattr(limit, "error_message", None) and error.description
        message = f"{own} {ratelimits.wait_message(wait)}" if own else ratelimits.wait_message(wait)
        response = render_error(429, message)
        response[0].headers["Retry-After"] = str(wait)
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return render_error(400, _("Your session form expired. Reload the page and try again."))

    @app.errorhandler(sa_exc.OperationalError)
    @app.errorhandler(sa_exc.InternalError)
    def database_unavailable(error):
        # Disk full, read-only file or database, server gone: nothing of this request was
        # committed, so say so and ask to retry rather than show a bare 500.
        db.session.rollback()
        # The class name only: the message may quote SQL parameters (personal data).
        app.logger.error("database unavailable: %s", type(error.orig or error).__name__)
        response = render_error(
            503,
            _(
                "The database cannot store anything right now (it may be full, read-only or "
                "unreachable). Nothing was saved; please try again in a few minutes."
            ),
        )
        response[0].headers["Retry-After"] = "30"
        return response

    @app.errorhandler(500)
    def server_error(error):
        # Commit once per request: a failed request leaves nothing half-written behind.
        db.session.rollback()
        return render_error(500)


def register_security_headers(app: Flask) -> None:
    from fieldapp import tiles

    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:{tiles}; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'; manifest-src 'self'; worker-src 'self'"
    )

    @app.after_request
    def headers(response):
        # The map's tile server, when one is configured, is the only other image origin.
        tile_origins = "".join(" " + o for o in tiles.origins(app.config))
        response.headers.setdefault("Content-Security-Policy", csp.format(tiles=tile_origins))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(self)"
        )
        if request.is_secure:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        if getattr(g, "vary_hx", False):
            response.vary.add("HX-Request")
        # Pages, fragments, JSON and CSV exports carry names and phone numbers: never kept in
        # a browser's or a proxy's HTTP cache. Static files, the service worker and the
        # manifest set their own caching.
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response


def register_commands(app: Flask) -> None:
    from fieldapp.cli import register

    register(app)


def configure_logging(app: Flask) -> None:
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
