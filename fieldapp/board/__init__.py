"""The station chief's pages: the live board, the map, the wall screen, timelines, figures."""

from flask import Blueprint

from fieldapp import names, numbers

bp = Blueprint("board", __name__)


@bp.record_once
def _template_helpers(state) -> None:
    # Number filters and the person label are used by the chief's pages and the hand-entry form.
    state.app.jinja_env.filters.update(numbers.FILTERS)
    state.app.jinja_env.globals["person_label"] = names.person
    state.app.jinja_env.globals["person_html"] = names.person_html


@bp.after_request
def _no_store(response):
    # Every chief page names people (officers, residents): never kept in a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


from fieldapp.board import figures_routes, map_routes, routes, settings_routes  # noqa: E402,F401
