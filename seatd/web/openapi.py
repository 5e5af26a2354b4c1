"""The JSON API's OpenAPI 3.1 document, served at /api/v1/openapi.json.

Built from what the API is made of, so it cannot drift from it: the paths from `api.ROUTES`
(and the few routes that are more than one action), the bodies from the AdminService
messages the routes take and answer, as protobuf's JSON mapping writes them with the options
`api.to_json` uses (proto field names; every field without presence always present, so
required; 64-bit integers as numbers while exact, else as strings; enums by name; Timestamp
as RFC 3339, Duration as "1.5s"). tests/integration/test_web_api.py checks real answers
of every documented route against it with openapi-core.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from seatclient.v1 import admin_pb2, types_pb2

from seatd import __version__
from seatd.auth import TABLE
from seatd.web import api

Schema = dict[str, Any]

ADMIN = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
REF = "#/components/schemas/"

_SCALARS: dict[int, Schema] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": ["number", "string"]},
    FieldDescriptor.TYPE_FLOAT: {"type": ["number", "string"]},
    FieldDescriptor.TYPE_INT32: {"type": "integer"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "minimum": 0},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
    }
)
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
}


def _value(field: FieldDescriptor, schemas: dict[str, Schema]) -> Schema:
    if field.type in _INT64:
        return {"type": ["integer", "string"], "pattern": r"^-?\d+$"}
    if field.enum_type is not None:
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if field.message_type is not None:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        message(field.message_type, schemas)
        return {"$ref": REF + name}
    return dict(_SCALARS[field.type])


def message(descriptor: Descriptor, schemas: dict[str, Schema], *, answer: bool = True) -> Schema:
    """The schema of `descriptor`'s JSON form, its message types added to `schemas`. An
    answer has every field without presence; a request may leave any field out."""
    name = descriptor.full_name
    if answer and name in schemas:
        return schemas[name]
    properties: dict[str, Schema] = {}
    required: list[str] = []
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if answer:
        # Placed before the fields are walked, so a message that contains itself ends.
        schemas[name] = schema
    for field in descriptor.fields:
        entry = field.message_type
        if field.is_repeated and entry is not None and entry.GetOptions().map_entry:
            value = _value(entry.fields_by_name["value"], schemas)
            properties[field.name] = {"type": "object", "additionalProperties": value}
        elif field.is_repeated:
            properties[field.name] = {"type": "array", "items": _value(field, schemas)}
        else:
            properties[field.name] = _value(field, schemas)
        if not field.has_presence:
            required.append(field.name)
    if answer and required:
        schema["required"] = required
    return schema


def _error(schemas: dict[str, Schema]) -> Schema:
    """{"error": ErrorDetail + the gRPC code's name}, as `seatd.web.errors` answers."""
    detail = message(types_pb2.ErrorDetail.DESCRIPTOR, schemas)
    error = {**detail, "properties": {**detail["properties"], "code": {"type": "string"}}}
    error["required"] = [*detail.get("required", []), "code"]
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": error},
        "additionalProperties": False,
    }
    return {"$ref": REF + "Error"}


def _roles(action: str) -> str:
    return ", ".join(sorted(TABLE[action]))


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


JOURNAL_QUERY = [
    ("user", "string", "entries of this user code"),
    ("session", "integer", "entries of this session id"),
    ("kind", "string", "entries of this kind (repeatable): granted, released, evicted, ..."),
    ("since", "string", "from: ISO date or time (UTC unless it says), or 30m, 24h, 7d back"),
    ("until", "string", "to: as since"),
]


def _query(names: list[tuple[str, str, str]]) -> list[Schema]:
    return [
        {"name": n, "in": "query", "required": False, "description": d, "schema": {"type": t}}
        for n, t, d in names
    ]


def _path_parameters(path: str) -> list[Schema]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in re.findall(r"{(\w+)}", path)
    ]


def _operation(route: api.Route, schemas: dict[str, Schema], error: Schema) -> Schema:
    method = ADMIN.methods_by_name[route.action]
    op: Schema = {
        "operationId": route.operation or route.action,
        "summary": route.summary,
        "description": f"Roles: {_roles(route.action)}. AdminService.{route.action} over HTTP.",
        "parameters": _path_parameters(route.path),
        "responses": {
            str(route.status): {
                "description": method.output_type.name,
                "content": _json(message(method.output_type, schemas)),
            },
            "default": {"description": "an error, as gRPC reports it", "content": _json(error)},
        },
    }
    if route.action == "ReadJournal":
        op["parameters"] += _query(
            [*JOURNAL_QUERY, ("after", "integer", "after this seq"), ("limit", "integer", "")]
        )
    elif route.method in ("POST", "PUT"):
        taken = {p["name"] for p in op["parameters"]}
        body = message(method.input_type, schemas, answer=False)
        body["properties"] = {k: v for k, v in body["properties"].items() if k not in taken}
        op["requestBody"] = {"required": False, "content": _json(body)}
    return op


def _extra(schemas: dict[str, Schema], error: Schema) -> dict[str, Schema]:
    errors = {"default": {"description": "an error", "content": _json(error)}}
    me = {
        "type": "object",
        "required": ["actor", "role", "actions", "csrf_token"],
        "properties": {
            "actor": {"type": "string"},
            "role": {"type": "string", "enum": ["owner", "buyer", "admin", "viewer"]},
            "actions": {"type": "array", "items": {"type": "string", "enum": list(TABLE)}},
            "csrf_token": {"type": "string"},
        },
    }
    day = {
        "type": "object",
        "required": ["day", "peak_sessions", "seat_hours", "refusals", "evictions"],
        "properties": {
            "day": {"type": "string", "format": "date"},
            "peak_sessions": {"type": "integer"},
            "seat_hours": {"type": "number"},
            "refusals": {"type": "integer"},
            "evictions": {"type": "integer"},
        },
    }
    usage = {
        "type": "object",
        "required": ["seat_cap", "days"],
        "properties": {
            "seat_cap": {"type": ["integer", "null"]},
            "days": {"type": "array", "items": day},
        },
    }

    def text(media: str) -> dict[str, Schema]:
        # A download: any bytes of that media type (JSON Schema cannot say more of CSV).
        return {media: {"schema": {"contentMediaType": media}}}

    return {
        "/me": {
            "get": {
                "operationId": "Me",
                "summary": "Who the caller is, what it may do, its CSRF token (browser logins)",
                "responses": {"200": {"description": "the caller", "content": _json(me)}, **errors},
            }
        },
        "/usage": {
            "get": {
                "operationId": "Usage",
                "summary": "Daily usage: peak sessions, seat-hours, refusals, evictions",
                "description": f"Roles: {_roles('ReadJournal')}.",
                "parameters": _query(
                    [("days", "integer", "days back (1-3660, 30)"), ("format", "string", "csv")]
                ),
                "responses": {
                    "200": {
                        "description": "one row a day, oldest first",
                        "content": {**_json(usage), **text("text/csv")},
                    },
                    **errors,
                },
            }
        },
        "/journal/export": {
            "get": {
                "operationId": "ExportJournal",
                "summary": "The filtered journal whole: JSON lines as stored, or CSV",
                "description": f"Roles: {_roles('ReadJournal')}.",
                "parameters": _query([*JOURNAL_QUERY, ("format", "string", "jsonl or csv")]),
                "responses": {
                    "200": {
                        "description": "a download",
                        "content": {**text("application/x-ndjson"), **text("text/csv")},
                    },
                    **errors,
                },
            }
        },
        "/events": {
            "get": {
                "operationId": "Events",
                "summary": "Server-sent events: each journal entry as it commits",
                "description": f"Roles: {_roles('WatchJournal')}. `event: journal`, `id: SEQ`, "
                "data = a JournalEntry; Last-Event-ID (or ?after=SEQ) resumes.",
                "responses": {
                    "200": {"description": "a stream", "content": text("text/event-stream")},
                    **errors,
                },
            }
        },
    }


@functools.cache
def document() -> dict[str, Any]:
    schemas: dict[str, Schema] = {}
    error = _error(schemas)
    paths: dict[str, Schema] = {}
    for route in api.ROUTES:
        paths.setdefault(api.PREFIX + route.path, {})[route.method.lower()] = _operation(
            route, schemas, error
        )
    for path, item in _extra(schemas, error).items():
        paths[api.PREFIX + path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "seatd JSON API",
            "version": __version__,
            "description": "The AdminService's actions over HTTP. Authenticate with "
            "`Authorization: Bearer TOKEN` (seatctl token create), or a browser login "
            "(cookie + X-CSRF-Token header on state-changing requests).",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "login": {"type": "apiKey", "in": "cookie", "name": "seatd_login"},
            },
        },
        "security": [{"bearer": []}, {"login": []}],
        "paths": paths,
    }
