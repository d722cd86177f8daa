"""The officer's pages: my warnings, a warning, confirmations, settings, talking points."""

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint, current_app

from fieldapp.live import start as live_start

bp = Blueprint("field", __name__)

# Every officer page's live stream starts where the page was made (templates/field/_live.html).
bp.add_app_template_global(live_start.newest_id, "live_start_id")


@cache
def _static_version(static_folder: str, filename: str) -> str:
    path = Path(static_folder) / filename
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return "0"


@bp.app_url_defaults
def _versioned_static(endpoint: str, values: dict) -> None:
    """Static URLs carry a content hash, so the service worker may serve them cache-first and a
    new release can never be mixed with an old cached file."""
    if endpoint == "static" and "filename" in values and "v" not in values:
        folder = current_app.static_folder or ""
        if current_app.debug:
            _static_version.cache_clear()
        values["v"] = _static_version(folder, values["filename"])


from fieldapp.field import routes  # noqa: E402,F401
