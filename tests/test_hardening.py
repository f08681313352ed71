"""Hostile input and tampering: a revoked API key, checkpoint chains and their witness, spreadsheets that
expand on decompression or hold huge fields, formulas in exported cells, unbounded timer values."""
from __future__ import annotations

from datetime import timedelta
from xml.sax.saxutils import escape

import pytest

from api.http.app import create_app
from engine.definitions.bundle import DefinitionRejected
from engine.errors import InvalidCommand
from engine.execution.expressions import ExpressionError
from engine.execution.spiff import timer_due
from engine.audit.trail import AuditKeyError, Witness, read_witness, witness_path

from .api_fixtures import GRID, JWT_KEY, api, make_api  # noqa: F401  (fixture)
from .conftest import T0, grid_matter_upload, registered
from .test_cases import Walk
from .test_audit import _case, _rehash, _sql, key  # noqa: F401  (fixture)


def test_a_revoked_api_key_is_refused_on_the_next_request_on_every_worker(api):
    key, view = api.engine.api_keys.create("hotline bridge", user="12345-bridge", by="admin")
    headers = {"Authorization": f"Bearer {key}"}
    other = create_app(api.engine, {"GRIDFLOW_JWT_KEY": JWT_KEY}).test_client()  # another gunicorn worker
    for client in (api.client, other):   # both have the key cached now
        assert client.get("/cases", headers=headers).status_code == 200
    api.engine.api_keys.revoke(view.id)   # as `gridflow apikey revoke` does, from outside both workers
    for client in (api.client, other):
        refused = client.get("/cases", headers=headers)
        assert refused.status_code == 401 and refused.json["error"]["message"]["zh"] == "API 密钥无效或已吊销"


# -- checkpoints: their own chain, and the witness beside the key ------------------------------------------

def test_deleting_every_checkpoint_then_rewriting_a_chain_is_tampering(deployed, clock, key):
    case_id = _case(deployed, clock)
    first = deployed.audit.checkpoint(by="auditor")
    second = deployed.audit.checkpoint(by="auditor")
    assert (first.seq, second.seq) == (1, 2) and second.prev_signature == first.signature
    assert read_witness(key) == Witness(second.id, 2, second.signature)
    assert deployed.audit.verify().intact
    _sql(deployed, "DELETE FROM audit_checkpoints")
    _sql(deployed, "UPDATE history_events SET actor = 'forger' WHERE case_id = :c AND seq = 3", c=case_id)
    _rehash(deployed, case_id)
    report = deployed.audit.verify()
    assert not report.intact
    (found,) = [f for f in report.findings if f.kind == "checkpoint"]
    assert f"checkpoint {second.id} (number 2)" in found.detail and "are all gone" in found.detail
    # The witness as printed for filing works the same without the file.
    witness_path(key).unlink()
    assert not deployed.audit.verify(witness=str(Witness(second.id, 2, second.signature))).intact


def test_rolling_checkpoints_back_or_cutting_the_newest_is_tampering(deployed, clock, key):
    _case(deployed, clock)
    for _ in range(3):
        deployed.audit.checkpoint(by="auditor")
    latest = deployed.audit.checkpoints(1)[0]
    _sql(deployed, "DELETE FROM audit_checkpoints WHERE seq = 3")   # back to the state of checkpoint 2
    found = [f for f in deployed.audit.verify().findings if f.kind == "checkpoint"]
    assert len(found) == 1 and "end at number 2" in found[0].detail and str(latest.id) in found[0].detail
    # A gap in the middle of the chain.
    deployed.audit.checkpoint(by="auditor")   # number 3 again, and a new witness
    _sql(deployed, "DELETE FROM audit_checkpoints WHERE seq = 2")
    found = [f for f in deployed.audit.verify().findings if f.kind == "checkpoint"]
    assert found and "number 3 of the checkpoint chain where number 2 belongs" in found[0].detail


def test_a_checkpoint_witness_that_is_not_one_is_refused(deployed, clock, key):
    with pytest.raises(AuditKeyError, match="not a checkpoint witness"):
        deployed.audit.verify(witness="12:3:nothex")
    no_witness = deployed.audit.verify()
    assert no_witness.intact and any("no checkpoint witness" in n for n in no_witness.notes)


# -- timers: bounded at deploy for literals, at run time otherwise -----------------------------------------

def _with_timer(expression: str) -> dict[str, bytes]:
    upload = grid_matter_upload()
    bpmn = upload["grid_matter.bpmn"]
    assert b'>"P7D"</bpmn:timeDuration>' in bpmn
    return {"grid_matter.bpmn": bpmn.replace(b'>"P7D"</bpmn:timeDuration>',
                                             f">{escape(expression)}</bpmn:timeDuration>".encode())}


def test_an_unbounded_timer_literal_is_refused_at_deploy(engine, clock):
    for expression in ("'P' + '9' * 1000000 + 'D'", '"P99999999D"', '"P20Y"', '"P" + "9" * 60 + "D"'):
        with pytest.raises(DefinitionRejected) as refused:
            engine.definitions.deploy(_with_timer(expression), "admin", clock)
        assert any("bpmn:timeDuration" in str(p) for p in refused.value.problems), refused.value.problems
    engine.definitions.deploy(_with_timer('"P3D"'), "admin", clock)   # a real deadline deploys


def test_a_computed_timer_value_out_of_bounds_is_refused_when_it_is_set():
    start = T0
    assert timer_due("duration", "P3D", start) == start + timedelta(days=3)
    for kind, value in (("duration", "P" + "9" * 100 + "D"), ("duration", "P99999D"), ("date", "9999-12-31T00:00:00Z"),
                        ("duration", "soon")):
        with pytest.raises(ExpressionError):
            timer_due(kind, value, start)


# -- the spec says what the server does ----------------------------------------------------------------------

def test_spec_and_server_agree_on_merge_notice_and_routing(api):
    options = api.call("options", "/registry/grids/merge", "admin")
    assert set(options.headers["Allow"].replace(" ", "").split(",")) == {"OPTIONS", "POST"}
    spec = api.call("get", "/openapi.json").json
    notice = spec["paths"]["/registry/grids/{code}/notice"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "text/html"} <= set(notice)
    routing = {p["name"]: p["schema"] for p in spec["paths"]["/catalog/routing"]["get"]["parameters"]}
    assert "enum" in routing["sub_category"] and "pattern" in routing["area"]
    # The request schemathesis found refused although the spec allowed it is now outside the spec, and
    # the server still refuses it the same way.
    refused = api.call("get", "/catalog/routing?sub_category=0&level=community&area=" + "0" * 39, "worker")
    assert refused.status_code == 422


def test_a_timer_value_computed_out_of_bounds_refuses_the_command(engine, clock):
    registered(engine, clock)
    engine.definitions.deploy(_with_timer('"P" + summary + "D"'), "admin", clock)  # not a literal: deploys
    walk = Walk(engine, clock).dispatched()
    walk.sign().do("handle", result="ok").do("check_result", passed=True)
    before = len(engine.queries.history(walk.id))
    with pytest.raises(InvalidCommand, match="more than 3660 days"):
        walk.do("close_case", summary="99999")   # the follow-up window's timer is set by this command
    assert len(engine.queries.history(walk.id)) == before   # refused whole
    walk.do("close_case", summary="7")
    assert walk.view.status == "closed"


def test_a_witness_that_cannot_be_written_is_said_with_the_witness_to_file(deployed, clock, key):
    witness_path(key).mkdir()   # something in the witness's place that is not a file
    with pytest.raises(AuditKeyError, match=r"was signed and stored.*file it elsewhere: 1:1:[0-9a-f]{64}"):
        deployed.audit.checkpoint(by="auditor")
    assert deployed.audit.checkpoints()[0].seq == 1
