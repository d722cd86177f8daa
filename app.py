"""Entry point: `flask --app app ...` builds the app from fieldapp.create_app()."""

from fieldapp import create_app

app = create_app()
