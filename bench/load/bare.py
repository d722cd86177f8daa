"""The floor: a bare Flask app answering the same routes as the load test, doing no work.

Served by the same gunicorn setup as the real app (gunicorn.conf.py, gevent workers), so the
difference between the two runs is what Fieldapp itself costs (database, templates, sessions,
dispatch, the live channel). Its streams hold their connection and send keep-alives only.
"""

import os
import time

from flask import Flask, Response, jsonify, redirect, request

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


STREAM_SECONDS = float(os.environ.get("FIELDAPP_STREAM_SECONDS", "55"))


def _held_stream():
    def generate():
        yield "retry: 3000\n\n"
        deadline = time.monotonic() + STREAM_SECONDS
        while (remaining := deadline - time.monotonic()) > 0:
            time.sleep(min(15, remaining))  # a greenlet's sleep under the gevent worker
            yield ": keep-alive\n\n"

    return Response(generate(), mimetype="text/event-stream")


@app.get("/api/v1/me/stream")
def me_stream():
    return _held_stream()


@app.get("/board/stream")
def board_stream():
    return _held_stream()
