"""The station chief's pages: the live board, timelines, figures."""

from flask import Blueprint

bp = Blueprint("board", __name__)

from fieldapp.board import routes  # noqa: E402,F401
