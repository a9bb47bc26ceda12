"""The OpenAPI v2 document in the protobuf form kubectl 1.27 and 1.28 read (pure).

Those kubectl versions ask `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.
v2@v1.0+protobuf` and decode the answer only as protobuf: gnostic's openapi_v2.Document
(github.com/google/gnostic-models, openapiv2/OpenAPIv2.proto, proto3). This writes the subset of
that message our JSON document uses. Vendor extensions (`x-kubernetes-...`) and defaults travel as
`Any{yaml}` text, which kube-openapi reads back with a YAML parser; JSON text is valid YAML.

Field numbers are those of OpenAPIv2.proto (facts, listed once here).
"""

from __future__ import annotations

import orjson

from orchestrator.apiserver.protowire import field_bytes, field_varint

ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what clients ask for
# ...and what the answer is labelled: Go's mime parser refuses the "@" (kube-openapi answers so too).
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# message Schema
SCHEMA = {"$ref": 1, "format": 2, "title": 3, "description": 4, "default": 5, "required": 19,
          "additionalProperties": 21, "type": 22, "items": 23, "allOf": 24, "properties": 25, "x-": 31}
# message Operation
OPERATION = {"description": 3, "operationId": 5, "produces": 6, "consumes": 7, "parameters": 8, "responses": 9,
             "x-": 13}
PATH_ITEM = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}
BODY_PARAMETER = {"description": 1, "name": 2, "in": 3, "required": 4, "schema": 5}
QUERY_PARAMETER = {"required": 1, "in": 2, "description": 3, "name": 4, "type": 6}


def _text(number: int, value: str) -> bytes:
    return field_bytes(number, value.encode()) if value else b""


def _any(value) -> bytes:
    """gnostic Any: {value = 1 (google.protobuf.Any), yaml = 2}; only the YAML text is used."""
    return field_bytes(2, orjson.dumps(value))


def _named(number: int, name: str, payload: bytes) -> bytes:
    return field_bytes(number, field_bytes(1, name.encode()) + field_bytes(2, payload))


def _extensions(number: int, node: dict) -> bytes:
    return b"".join(_named(number, key, _any(value)) for key, value in node.items() if key.startswith("x-"))


def schema(node: dict) -> bytes:
    out = bytearray()
    for key in ("$ref", "format", "title", "description"):
        out += _text(SCHEMA[key], node.get(key, ""))
    if "default" in node:
        out += field_bytes(SCHEMA["default"], _any(node["default"]))
    for name in node.get("required", []):
        out += _text(SCHEMA["required"], name)
    if "additionalProperties" in node:
        out += field_bytes(SCHEMA["additionalProperties"], field_bytes(1, schema(node["additionalProperties"])))
    if "type" in node:
        out += field_bytes(SCHEMA["type"], _text(1, node["type"]))
    if "items" in node:
        out += field_bytes(SCHEMA["items"], field_bytes(1, schema(node["items"])))
    for part in node.get("allOf", []):
        out += field_bytes(SCHEMA["allOf"], schema(part))
    if "properties" in node:
        out += field_bytes(SCHEMA["properties"], b"".join(
            _named(1, name, schema(sub)) for name, sub in node["properties"].items()))
    out += _extensions(SCHEMA["x-"], node)
    return bytes(out)


def _parameter(node: dict) -> bytes:
    if node["in"] == "body":
        body = b"".join(_text(BODY_PARAMETER[k], node.get(k, "")) for k in ("description", "name", "in"))
        body += field_varint(BODY_PARAMETER["required"], 1) if node.get("required") else b""
        body += field_bytes(BODY_PARAMETER["schema"], schema(node["schema"]))
        parameter = field_bytes(1, body)
    else:
        query = field_varint(QUERY_PARAMETER["required"], 1) if node.get("required") else b""
        query += b"".join(_text(QUERY_PARAMETER[k], node.get(k, "")) for k in ("in", "description", "name", "type"))
        parameter = field_bytes(2, field_bytes(3, query))  # NonBodyParameter.query_parameter_sub_schema
    return field_bytes(1, parameter)  # ParametersItem.parameter


def _operation(node: dict) -> bytes:
    out = bytearray(_text(OPERATION["description"], node.get("description", "")))
    out += _text(OPERATION["operationId"], node.get("operationId", ""))
    for key in ("produces", "consumes"):
        for media_type in node.get(key, []):
            out += _text(OPERATION[key], media_type)
    for parameter in node.get("parameters", []):
        out += field_bytes(OPERATION["parameters"], _parameter(parameter))
    responses = b""
    for code, response in node.get("responses", {}).items():
        body = _text(1, response.get("description", ""))
        if "schema" in response:
            body += field_bytes(2, field_bytes(1, schema(response["schema"])))  # SchemaItem.schema
        responses += _named(1, code, field_bytes(1, body))  # ResponseValue.response
    out += field_bytes(OPERATION["responses"], responses)
    out += _extensions(OPERATION["x-"], node)
    return bytes(out)


def document(doc: dict) -> bytes:
    """The whole openapi_v2.Document."""
    info = _text(1, doc["info"]["title"]) + _text(2, doc["info"]["version"])
    paths = b""
    for path, item in doc["paths"].items():
        payload = b"".join(field_bytes(PATH_ITEM[verb], _operation(op)) for verb, op in item.items())
        paths += _named(2, path, payload)
    definitions = b"".join(_named(1, name, schema(node)) for name, node in doc["definitions"].items())
    return _text(1, doc["swagger"]) + field_bytes(2, info) + field_bytes(8, paths) + field_bytes(9, definitions)
