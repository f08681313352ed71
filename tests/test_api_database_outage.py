"""The database going away under a running API (a restart, a failover): the request that meets a dead
connection answers 503 in the one error shape, never a 500, and the next one is served on a new connection."""
from __future__ import annotations

import sqlalchemy as sa

from api.http.app import create_app
from engine.service import Engine
from tests.api_fixtures import JWT_KEY, bearer
from tests.conftest import PG_URL


def test_a_dropped_connection_answers_503_then_the_api_recovers(pg_url):
    engine = Engine(pg_url, pool_pre_ping=False)   # as `gridflow serve` runs it
    client = create_app(engine, {"GRIDFLOW_JWT_KEY": JWT_KEY}).test_client()
    assert client.get("/tasks", headers=bearer("worker")).status_code == 200
    with engine.db.connect() as conn:   # the pooled connection's server process
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    admin.dispose()
    failed = client.get("/tasks", headers=bearer("worker"))
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert failed.get_json()["error"]["code"] == "database_unavailable"
    assert client.get("/tasks", headers=bearer("worker")).status_code == 200
    engine.close()
