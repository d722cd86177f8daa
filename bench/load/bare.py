"""The floor: a bare Flask app answering the same routes as the load test, doing no work.

Served by the same gunicorn setup as the real app, so the difference between the two runs is
what Fieldapp itself costs (database, templates, sessions, dispatch).
"""

from flask import Flask, jsonify, redirect, request

app = Flask(__name__)

LOGIN_PAGE = '<html><head><meta name="csrf-token" content="bare-csrf"></head><body></body></html>'


@app.get("/login")
def login_page():
    return LOGIN_PAGE


@app.post("/login")
def login():
    return redirect("/field/")


@app.get("/field/")
def field():
    return LOGIN_PAGE


@app.get("/board/")
def board():
    return LOGIN_PAGE


@app.post("/api/v1/me/position")
def position():
    request.get_json(silent=True)
    return "", 204


@app.post("/api/v1/warnings")
def warnings():
    request.get_json(silent=True)
    return jsonify({"id": 1, "status": "offered", "url": "/api/v1/warnings/1"}), 201
