"""GET /api/v1/openapi.json, built from the same pydantic models that validate requests.

Each API module registers its operations with `register()`; the document is assembled on
request from that registry, so it cannot drift from the code.
"""

from typing import Any

from flask import jsonify
from pydantic import BaseModel

from fieldapp.api import bp

_OPERATIONS: dict[str, dict[str, dict]] = {}
_MODELS: dict[str, type[BaseModel]] = {}

REF = "#/components/schemas/{model}"


def ref(model: type[BaseModel]) -> dict:
    """A $ref to `model`, registering it as a component."""
    _MODELS[model.__name__] = model
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], description: str = "") -> dict:
    """A JSON request body or response of `model`."""
    out: dict[str, Any] = {"content": {"application/json": {"schema": ref(model)}}}
    if description:
        out["description"] = description
    return out


def register(path: str, method: str, operation: dict) -> None:
    """Add one operation (an OpenAPI Operation Object) to the document."""
    _OPERATIONS.setdefault(path, {})[method.lower()] = operation


def document() -> dict:
    """The whole OpenAPI 3.1 document."""
    schemas: dict[str, Any] = {}
    for name, model in sorted(_MODELS.items()):
        schema = model.model_json_schema(ref_template=REF, mode="validation")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fieldapp API",
            "version": "1.0.0",
            "description": "Intake of early warnings from the anti-fraud centre, feedback on "
            "them, and the officer's device endpoints.",
        },
        "servers": [{"url": "/"}],
        "paths": _OPERATIONS,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
