"""The API's OpenAPI document, built from the decorator on each view and the models it parses.

`@operation(...)` sits under a view's route: it reads the JSON body into the view's model
(answering 413 or 422 otherwise) and records what the view answers. `document()` walks the
app's routes, so paths, methods and path parameters come from the routing itself and the
schemas from the models that validate: the document cannot drift from the checks.

Answers are documented where they happen: 401 for every authenticated operation, 403 for every
session one (a user on a one-time password), 400 for a missing CSRF token where the session
cookie authenticates a change, 404 where the path names a row, 413 and 422 where there is a
body; the rest (409, 429, ...) the view declares.
"""

import inspect
import re
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import abort, current_app, jsonify, make_response, request
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError

from fieldapp.api import bp
from fieldapp.extensions import csrf
from fieldapp.validation import MAX_ID, field_errors

REF = "#/components/schemas/{model}"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
WHY = {
    200: "done",
    201: "created",
    202: "accepted; the work follows",
    204: "done, nothing to return",
    400: "missing or expired CSRF token (X-CSRFToken header)",
    401: "not logged in, or no valid bearer token",
    403: "not allowed for this user's role, or (code password_change_required) the user is on "
    "a one-time password and must choose a new one first",
    404: "no such thing that this user may see",
    409: "conflicts with the current state",
    413: "body too large",
    422: "bad input: one message per field",
    429: "too many requests; see Retry-After",
}
ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
ERRORS = {
    "type": "object",
    "properties": {
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["errors"],
}


@dataclass(frozen=True)
class Spec:
    """What one view takes and answers, for the document."""

    body: type[BaseModel] | None
    out: type[BaseModel] | None
    status: tuple[int, ...]
    answers: tuple[int, ...]
    auth: str | None
    csrf: bool
    links: dict = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    stream: bool = False


def unprocessable(errors: dict[str, str]):
    """The contract's 422 answer: {"errors": {field: message}}."""
    return make_response(jsonify({"errors": errors}), 422)


def read_body(model: type[BaseModel], max_bytes: int | None = None) -> BaseModel:
    """The JSON body as `model`, or abort with 413 (too large) or 422 (anything else wrong)."""
    limit = max_bytes or current_app.config["MAX_CONTENT_LENGTH"]
    # One byte over the limit: a chunked body (no Content-Length) is cut at the limit by the
    # server's stream wrapper, so only reading past it shows that it was longer.
    request.max_content_length = limit + 1
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        abort(413)
    if raw.strip() and not request.is_json:
        abort(unprocessable({"body": _("Send JSON with Content-Type: application/json.")}))
    try:
        # Strict: JSON types as the document states them (no true for a number, no "1" for a
        # boolean); the forms and CSV files that share the models are read leniently.
        return model.model_validate_json(raw if raw.strip() else b"{}", strict=True)
    except ValidationError as exc:
        abort(unprocessable(field_errors(exc)))


def operation(
    *,
    body: type[BaseModel] | None = None,
    out: type[BaseModel] | None = None,
    status: int | tuple[int, ...] = 200,
    answers: tuple[int, ...] = (),
    auth: str | None = "session",
    csrf_check: bool = True,
    max_bytes: str | None = None,
    links: dict | None = None,
    headers: tuple[str, ...] = (),
    stream: bool = False,
):
    """Document a view; with `body`, parse it and pass it to the view as `data`.

    auth is "session", "bearer" or None; `csrf_check=False` exempts a session view from the
    CSRF check; `max_bytes` names the setting that limits the body (else MAX_CONTENT_LENGTH);
    `links` are OpenAPI link objects from the success answer to other operations.
    """
    spec = Spec(
        body=body,
        out=out,
        status=status if isinstance(status, tuple) else (status,),
        answers=answers,
        auth=auth,
        csrf=auth == "session" and csrf_check,
        links=links or {},
        headers=headers,
        stream=stream,
    )

    def decorate(view):
        if body is None:
            wrapped = view
        else:

            @wraps(view)
            def wrapped(*args, **kwargs):
                limit = current_app.config[max_bytes] if max_bytes else None
                return view(*args, data=read_body(body, limit), **kwargs)

        wrapped.openapi = spec
        if not spec.csrf:
            csrf.exempt(wrapped)
        return wrapped

    return decorate


# --- the document ---------------------------------------------------------------------------

_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _json(schema: dict, description: str, content_type: str = "application/json") -> dict:
    return {"description": description, "content": {content_type: {"schema": schema}}}


class _Builder:
    def __init__(self):
        self.models: dict[str, type[BaseModel]] = {}

    def ref(self, model: type[BaseModel]) -> dict:
        self.models[model.__name__] = model
        return {"$ref": REF.format(model=model.__name__)}

    def responses(self, spec: Spec, method: str, has_path_params: bool) -> dict:
        out: dict[str, Any] = {}
        for code in spec.status:
            if spec.stream:
                answer = _json({"type": "string"}, "text/event-stream", "text/event-stream")
            elif spec.out is not None:
                answer = _json(self.ref(spec.out), WHY[code])
            elif code == 204:
                answer = {"description": WHY[code]}
            else:
                answer = _json({"type": "object"}, WHY[code])
            if spec.links:
                answer["links"] = spec.links
            out[str(code)] = answer
        codes = set(spec.answers)
        if spec.auth:
            codes.add(401)
        if spec.auth == "session":
            codes.add(403)  # auth/sessions.require_password_change, before every /api/ view
        if spec.csrf and method in UNSAFE:
            codes.add(400)
        if has_path_params:
            codes.add(404)
        if spec.body is not None:
            codes |= {413, 422}
        for code in sorted(codes):
            out[str(code)] = _json(ERRORS if code == 422 else ERROR, WHY[code])
        return out

    def operation(self, view, spec: Spec, method: str, rule: str) -> dict:
        doc = inspect.getdoc(view) or ""
        summary, _sep, description = doc.partition("\n\n")
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}
                if converter == "int"
                else {"type": "string"},
            }
            for converter, name in _PARAM.findall(rule)
        ]
        params += [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
            for name in spec.headers
        ]
        if spec.csrf and method in UNSAFE:
            params.append(
                {
                    "name": "X-CSRFToken",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                }
            )
        operation: dict[str, Any] = {
            "operationId": _camel(view.__name__),
            "summary": " ".join(summary.split()),
            "responses": self.responses(spec, method, "<" in rule),
        }
        if description:
            operation["description"] = description
        if spec.auth:
            operation["security"] = [{spec.auth: []}]
        if params:
            operation["parameters"] = params
        if spec.body is not None:
            operation["requestBody"] = {"required": True, **_json(self.ref(spec.body), "")}
            del operation["requestBody"]["description"]
        return operation

    def schemas(self) -> dict:
        out: dict[str, Any] = {}
        for name, model in sorted(self.models.items()):
            schema = model.model_json_schema(ref_template=REF, mode="validation")
            out.update(schema.pop("$defs", {}))
            out[name] = schema
        return out


def document() -> dict:
    """The whole OpenAPI 3.1 document of the API blueprint."""
    builder = _Builder()
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions[rule.endpoint]
        spec = getattr(view, "openapi", None)
        if spec is None or not rule.endpoint.startswith(f"{bp.name}."):
            continue
        path = _PARAM.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = builder.operation(
                view, spec, method, rule.rule
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fieldapp API",
            "version": "1.0.0",
            "description": "Intake of early warnings from the anti-fraud centre, feedback on "
            "them, and the officer's device endpoints.",
        },
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": builder.schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


@bp.get("/openapi.json")
@operation(auth=None)
def openapi_json():
    """This document."""
    return jsonify(document())
