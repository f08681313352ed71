"""Fixtures: an engine on SQLite (a temp file) and on PostgreSQL (127.0.0.1:5432/test, own schema per test;
skipped only when the server is unreachable)."""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.clock import FixedClock
from engine.service import Engine

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
PG_URL = os.environ.get("GRIDFLOW_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)


def _pg_reachable() -> bool:
    try:
        probe = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with probe.connect():
            pass
        probe.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_reachable()


@pytest.fixture
def pg_url():
    """A fresh schema on the test server; its URL pins search_path to it."""
    if not PG_AVAILABLE:
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    schema = f"gf_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gridflow.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url):
    eng = Engine(db_url)
    yield eng
    eng.close()


@pytest.fixture
def clock():
    return FixedClock(T0)


def grid_matter_upload() -> dict[str, bytes]:
    return {"grid_matter.bpmn": (PROCESSES / "grid_matter.bpmn").read_bytes()}


# Units the tests dispatch to besides the sample's (rules/data/units.csv), registered like any other.
TEST_UNITS = ("路灯所", "市场监管所", "红旗区城市照明管理所", "自选单位", "生态环境分局", "U", "U2", "A", "B", "C")


def register_test_units(engine) -> None:
    from engine.store.models import UnitRow
    with engine.sessions() as session, session.begin():
        for code in TEST_UNITS:
            if session.get(UnitRow, code) is None:
                session.add(UnitRow(code=code, name=code, kind="service_unit",
                                    levels=["community", "township", "county", "city"]))


def registered(engine, clock) -> None:
    """The sample registry and the tests' own units: reports name grids in force, dispatches name
    registered units."""
    engine.registry.load_sample("admin", clock=clock)
    register_test_units(engine)


@pytest.fixture
def deployed(engine, clock):
    """The grid matter definition deployed, on the sample registry."""
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    return engine
