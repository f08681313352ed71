"""Property-based tests over the whole OpenAPI spec (schemathesis, in process over WSGI): no 5xx and no
response that breaks the spec, for every operation, as the platform (sees and may try everything)
and as a grid worker (scoped). Examples are few per operation so the run stays short."""
from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_headers_conformance,
                                 response_schema_conformance, status_code_conformance)

from engine.clock import FixedClock
from engine.service import Engine

from .api_fixtures import bearer, make_api
from .conftest import T0

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def _app():
    # Built at import: schemathesis 4 reads the spec when the tests are collected (its lazy fixture loader
    # does not work with pytest 9).
    folder = Path(tempfile.mkdtemp(prefix="gridflow-fuzz-"))
    engine = Engine(f"sqlite:///{folder / 'gridflow.db'}")
    api = make_api(engine, FixedClock(T0))
    api.walk_to_handle()  # real rows, so that ids 1..4 lead somewhere
    return api.client.application


schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())
FUZZ = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@FUZZ
def test_spec_as_platform(case):
    case.call_and_validate(headers=bearer("platform"), checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_spec_as_grid_worker(case):
    case.call_and_validate(headers=bearer("worker"), checks=CHECKS)
