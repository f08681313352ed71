"""Hostile text in every string the API reads, generated from its own OpenAPI spec (so a new endpoint is
covered without touching this file): a NUL character is refused with 422 everywhere, before it reaches the
database; an oversized value is refused or handled, never a 5xx. On SQLite and PostgreSQL (which cannot
store NUL in text at all)."""
from __future__ import annotations

import io
from urllib.parse import quote, urlencode

import pytest

from .api_fixtures import REPORTER, bearer, make_api

NUL = "41\x0007"
HUGE = "9" * 100_000          # in a path or query
HUGE_BODY = "9" * 300_000     # in a body (under the 1 MiB body limit)
ROLES = ("platform", "admin", "auditor", "worker", "agency", "unit")
# Values that lead somewhere, so that a parameter other than the one under test does not stop the request.
FILL = {"integer": 1, "number": 1, "boolean": True, "string": "410702001001U001", "object": {}, "array": []}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _filler(spec: dict, schema: dict):
    schema = _resolve(spec, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "object" and schema.get("properties"):
        return {name: _filler(spec, sub) for name, sub in schema["properties"].items()
                if name in schema.get("required", [])}
    if schema.get("type") == "integer":
        return max(1, schema.get("minimum", 1))
    return FILL.get(schema.get("type"), "x")


def _string_paths(spec: dict, schema: dict, prefix=()) -> list[tuple]:
    """Every place in a body schema that holds a string (a free-form object holds any key's string)."""
    schema = _resolve(spec, schema)
    if schema.get("type") == "string" and schema.get("format") != "binary":
        return [prefix]
    if schema.get("type") == "object" or "properties" in schema:
        found = []
        for name, sub in (schema.get("properties") or {}).items():
            found += _string_paths(spec, sub, prefix + (name,))
        if schema.get("additionalProperties") not in (None, False) or not schema.get("properties"):
            found.append(prefix + ("note",))
        return found
    if schema.get("type") == "array":
        return _string_paths(spec, schema.get("items", {}), prefix + (0,))
    return []


def _put(body, path: tuple, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == 0:
        return [_put(body[0] if isinstance(body, list) and body else {}, rest, value)]
    body = dict(body) if isinstance(body, dict) else {}
    body[head] = _put(body.get(head, {}), rest, value)
    return body


def _cases(spec: dict):
    """(label, method, path template, parameters, where, name, content type) for every string input."""
    for template, operations in spec["paths"].items():
        shared = operations.get("parameters", [])
        for method, op in operations.items():
            if method == "parameters":
                continue
            params = shared + op.get("parameters", [])
            for p in params:
                if _resolve(spec, p.get("schema", {})).get("type") == "string":
                    yield method, template, params, p["in"], p["name"], None, None
            for content_type, media in (op.get("requestBody") or {}).get("content", {}).items():
                schema = media.get("schema", {})
                for path in _string_paths(spec, schema):
                    if content_type == "application/json" or len(path) == 1:
                        yield method, template, params, "body", path, content_type, schema


def _request(client, spec, case, value, who):
    method, template, params, where, name, content_type, schema = case
    path, query = template, {}
    for p in params:
        p_schema = _resolve(spec, p.get("schema", {}))
        given = value if (p["in"], p["name"]) == (where, name) else _filler(spec, p_schema)
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", quote(str(given), safe=""))
        elif p["in"] == "query" and (p.get("required") or (p["in"], p["name"]) == (where, name)):
            query[p["name"]] = given
    url = path + ("?" + urlencode(query) if query else "")
    kwargs = {}
    if where == "body":
        body = _put(_filler(spec, schema), name, value)
        if content_type == "application/json":
            kwargs["json"] = body
        else:
            form = {k: v for k, v in body.items() if not isinstance(v, (dict, list))}
            for k, sub in (_resolve(spec, schema).get("properties") or {}).items():
                if _resolve(spec, sub).get("format") == "binary":
                    form[k] = (io.BytesIO(b"code,name\r\n"), "x.csv")
            kwargs.update(data=form, content_type="multipart/form-data")
    return client.open(url, method=method.upper(), headers=bearer(who), **kwargs)


@pytest.fixture
def api_and_spec(engine, clock):
    api = make_api(engine, clock)
    engine.registry.load_sample("admin")
    api.walk_to_handle(reporter=REPORTER)
    return api, api.client.get("/openapi.json").json


def test_the_spec_has_string_inputs_to_try(api_and_spec):
    _, spec = api_and_spec
    cases = list(_cases(spec))
    assert len(cases) > 60 and {c[3] for c in cases} == {"path", "query", "body"}


def test_a_nul_character_in_any_string_input_is_refused_with_422(api_and_spec):
    api, spec = api_and_spec
    wrong = []
    for case in _cases(spec):
        for who in ("platform", "admin"):
            response = _request(api.client, spec, case, NUL, who)
            body = response.get_json(silent=True) or {}
            if response.status_code != 422 or body.get("error", {}).get("code") != "validation_failed":
                wrong.append((case[0], case[1], case[3], case[4], who, response.status_code))
    assert not wrong, wrong


def test_an_oversized_string_in_any_input_is_never_a_server_error(api_and_spec):
    api, spec = api_and_spec
    wrong = []
    for case in _cases(spec):
        value = HUGE_BODY if case[3] == "body" else HUGE
        for who in ROLES:
            response = _request(api.client, spec, case, value, who)
            if response.status_code >= 500 or "error" not in (response.get_json(silent=True) or {"error": 1}):
                wrong.append((case[0], case[1], case[3], case[4], who, response.status_code))
    assert not wrong, wrong


def test_an_oversized_title_inside_free_form_data_is_refused_not_a_500(api_and_spec):
    api, _ = api_and_spec
    response = api.call("post", "/cases", "worker", {"process_key": "grid_matter", "data": {"title": "井" * 100_000}})
    assert response.status_code == 422, response.json
