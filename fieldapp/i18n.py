"""Language choice: Simplified Chinese first, English second, the user's choice remembered."""

from functools import lru_cache

from babel import Locale
from flask import Flask, current_app, has_request_context, request
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user

LANG_COOKIE = "lang"


@lru_cache(maxsize=32)
def locale(code: str) -> Locale:
    """The Locale for `code`, parsed once: Babel's parse scans every locale name it knows."""
    return Locale.parse(code)


def select_locale() -> Locale:
    """The user's explicit choice, then their profile, then zh_CN."""
    return locale(_choice())


def _choice() -> str:
    if not has_request_context():  # CLI and worker: Chinese first, callers may force_locale
        return "zh_CN"
    languages = current_app.config["LANGUAGES"]
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in languages:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    # Pages stay Chinese until someone chooses English; machine clients of the API may ask
    # for English error messages with Accept-Language.
    if request.path.startswith("/api/"):
        best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
        if best and best.startswith("en"):
            return "en"
    return "zh_CN"


def html_lang() -> str:
    """Value for <html lang>: zh-CN or en."""
    return "en" if str(get_locale()).startswith("en") else "zh-CN"


def init_app(app: Flask) -> None:
    from fieldapp import labels

    labels.register(app)
    app.jinja_env.globals["html_lang"] = html_lang
    app.jinja_env.filters["localtime"] = lambda value, fmt="short": (
        format_datetime(value, fmt) if value else ""
    )
    # The day alone (2026年11月28日), in the user's time zone: where the time of day is noise.
    app.jinja_env.filters["localdate"] = lambda value, fmt="long": (
        format_date(value, fmt) if value else ""
    )
