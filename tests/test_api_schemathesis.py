"""Property-based tests over the whole OpenAPI spec (schemathesis, in process over WSGI), as every role:
no 5xx and no response that breaks the spec, for every operation — status codes, content types, bodies,
headers, the `Allow` header and unsupported methods — and no request the spec calls well formed refused as
malformed. Examples per operation and role are few enough that the run stays within a couple of minutes.

NUL characters are left out of the generated text: the spec says no request may hold one (its description),
which JSON Schema cannot say of every string; tests/test_hostile_input.py sends them to every string input."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (allow_header_conformance, content_type_conformance, not_a_server_error,
                                 response_headers_conformance, response_schema_conformance,
                                 status_code_conformance, unsupported_method)

from api.http.auth import issue_token
from engine.access.scopes import Principal
from engine.audit.trail import generate_key
from engine.clock import FixedClock
from engine.service import Engine

from .api_fixtures import JWT_KEY, PRINCIPALS, bearer, make_api
from .conftest import T0

# One principal of every role the API knows.
ROLE_PRINCIPALS = {"worker": "grid_worker", "agency": "grid_agency", "unit": "responsible_unit",
                   "admin": "process_admin", "auditor": "auditor", "platform": "platform",
                   "county": "county_government"}
COUNTY = Principal("红旗区人民政府", "county_government", area_code="410702")
# Refusals of a request's form; the engine's refusals of what a well-formed request asks (a task in the
# wrong state, a grid not in the registry, …) carry codes of their own.
MALFORMED = {"validation_failed", "bad_request"}


def _headers(who: str) -> dict:
    if who == "county":
        return {"Authorization": f"Bearer {issue_token(COUNTY, JWT_KEY)}"}
    return bearer(who)


@schemathesis.check
def well_formed_requests_are_not_refused_as_malformed(ctx, response, case):
    """A request generated from the spec's schemas (positive mode) that the server refuses as malformed
    means the spec promises more than the server accepts."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    if code in MALFORMED:
        raise AssertionError(f"{case.operation.label}: a request the spec calls well formed was refused as "
                             f"malformed ({response.status_code} {code}): {response.text[:500]}")
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, allow_header_conformance, unsupported_method,
          well_formed_requests_are_not_refused_as_malformed]


def _app():
    # Built at import: schemathesis 4 reads the spec when the tests are collected (its lazy fixture loader
    # does not work with pytest 9).
    folder = Path(tempfile.mkdtemp(prefix="gridflow-fuzz-"))
    engine = Engine(f"sqlite:///{folder / 'gridflow.db'}")
    api = make_api(engine, FixedClock(T0))
    engine.registry.load_sample("admin")
    api.walk_to_handle()  # real rows, so that ids 1..4 lead somewhere
    app = api.client.application
    # The server holds an audit key, as an audit host does: signing a checkpoint is then a 201, not the
    # 503 of a server without one.
    app.config["GRIDFLOW_AUDIT_KEY_FILE"] = str(folder / "audit.key")
    generate_key(folder / "audit.key")
    return app


schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())
schema.config.generation.update(allow_x00=False)
FUZZ = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def test_every_role_is_fuzzed():
    assert set(ROLE_PRINCIPALS.values()) == {p.role for p in PRINCIPALS.values()} | {COUNTY.role}


@schema.parametrize()
@pytest.mark.parametrize("who", sorted(ROLE_PRINCIPALS))
@FUZZ
def test_spec(case, who):
    case.call_and_validate(headers=_headers(who), checks=CHECKS)
