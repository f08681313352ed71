"""Hostile input and tampering: a revoked API key, checkpoint chains and their witness, spreadsheets that
expand on decompression or hold huge fields, formulas in exported cells, unbounded timer values."""
from __future__ import annotations

import pytest

from api.http.app import create_app
from engine.audit.trail import AuditKeyError, Witness, read_witness, witness_path

from .api_fixtures import GRID, JWT_KEY, api  # noqa: F401  (fixture)
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
