"""The chief's entry desk: a warning typed in by hand, or a CSV batch (URLs under /intake)."""

from flask import Blueprint

bp = Blueprint("desk", __name__)


@bp.after_request
def _no_store(response):
    # A refused form comes back with the resident's name and phone in it: never cached.
    response.headers["Cache-Control"] = "no-store"
    return response


from fieldapp.desk import routes  # noqa: E402,F401
