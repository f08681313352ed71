"""HTTP: deploying definitions by upload, listing versions, fetching XML, comparing versions; who may."""
import io

import pytest

from api.http.app import create_app
from api.http.auth import issue_token
from engine.access.scopes import Principal
from tests.conftest import PROCESSES
from tests.test_definitions import DMN, USER_TASK, tiny

KEY = "test-signing-key-" + "x" * 32
GRID = "410702001001U001"
PRINCIPALS = {
    "grid_worker": Principal("worker1", "grid_worker", grid_code=GRID),
    "grid_agency": Principal("agency1", "grid_agency", level="township", area_code="410702001"),
    "responsible_unit": Principal("unit1", "responsible_unit", unit="hq_gongan"),
    "process_admin": Principal("admin1", "process_admin"),
    "auditor": Principal("auditor1", "auditor"),
    "platform": Principal("platform1", "platform"),
}
ROLES = (*PRINCIPALS, None)   # None: no Authorization header
GRID_MATTER = (PROCESSES / "grid_matter.bpmn").read_bytes()


def headers(role):
    if role is None:
        return {}
    return {"Authorization": f"Bearer {issue_token(PRINCIPALS[role], KEY)}"}


@pytest.fixture
def client(engine):
    app = create_app(engine, {"GRIDFLOW_JWT_KEY": KEY, "TESTING": True})
    return app.test_client()


def upload(client, files, role="process_admin"):
    """POST /definitions with `files` = {name: bytes} (or a list of (name, bytes) to send one name twice)."""
    items = files.items() if isinstance(files, dict) else files
    data = {"files": [(io.BytesIO(content), name) for name, content in items]}
    return client.post("/definitions", headers=headers(role), data=data, content_type="multipart/form-data")


def expected(role, allowed, ok):
    return 401 if role is None else ok if role in allowed else 403


READERS = {"process_admin", "auditor", "platform"}


def test_role_table(client):
    assert upload(client, {"grid_matter.bpmn": GRID_MATTER}).status_code == 201
    reads = ["/definitions", "/definitions/grid_matter", "/definitions/grid_matter/versions/1",
             "/definitions/grid_matter/versions/1/files/grid_matter.bpmn",
             "/definitions/grid_matter/compare?from=1&to=1"]
    seen = {}
    for path in reads:
        for role in ROLES:
            seen[(path, role)] = client.get(path, headers=headers(role)).status_code
    for role in ROLES:
        # Same content: "unchanged", so the table can run every role without changing anything.
        seen[("POST /definitions", role)] = upload(client, {"grid_matter.bpmn": GRID_MATTER}, role).status_code
    want = {(path, role): expected(role, READERS, 200) for path in reads for role in ROLES}
    want.update({("POST /definitions", role): expected(role, {"process_admin"}, 200) for role in ROLES})
    assert seen == want


def test_unauthenticated_and_forbidden_answers_have_the_error_shape(client):
    response = client.get("/definitions")
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"
    assert set(response.json["error"]["message"]) == {"zh", "en"}
    response = upload(client, {"grid_matter.bpmn": GRID_MATTER}, "auditor")
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    assert client.get("/definitions").headers["WWW-Authenticate"].startswith("Bearer")


def test_deploy_unchanged_new_version_list_and_fetch_round_trip(client):
    first = upload(client, {"grid_matter.bpmn": GRID_MATTER})
    assert first.status_code == 201
    assert [(o["key"], o["version"], o["created"], o["result"]) for o in first.json["outcomes"]] == \
        [("grid_matter", 1, True, "deployed")]
    again = upload(client, {"grid_matter.bpmn": GRID_MATTER})
    assert again.status_code == 200 and again.json["outcomes"][0]["result"] == "unchanged"
    changed = GRID_MATTER.replace(b'value="result:str, final?:bool"', b'value="result:str, final:bool"')
    second = upload(client, {"grid_matter.bpmn": changed})
    assert second.status_code == 201 and second.json["outcomes"][0]["version"] == 2

    admin = headers("process_admin")
    listed = client.get("/definitions", headers=admin).json
    assert [(d["key"], d["latest_version"], d["versions"], d["deployed_by"]) for d in listed] == \
        [("grid_matter", 2, 2, "admin1")]
    versions = client.get("/definitions/grid_matter", headers=admin).json["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["content_hash"] != versions[1]["content_hash"]
    one = client.get("/definitions/grid_matter/versions/2", headers=headers("auditor")).json
    assert [(f["name"], f["kind"], f["bytes"]) for f in one["files"]] == [("grid_matter.bpmn", "bpmn", len(changed))]
    xml = client.get(one["files"][0]["url"], headers=headers("auditor"))
    assert xml.status_code == 200 and xml.mimetype == "application/xml" and xml.data == changed
    old = client.get("/definitions/grid_matter/versions/1/files/grid_matter.bpmn", headers=admin)
    assert old.data == GRID_MATTER


def test_compare_two_versions_over_http(client):
    upload(client, {"grid_matter.bpmn": GRID_MATTER})
    changed = (GRID_MATTER.replace(b'value="result:str, final?:bool"', b'value="result:str, final:bool"')
               .replace(b'>"P7D"</bpmn:timeDuration>', b'>"P10D"</bpmn:timeDuration>'))
    upload(client, {"grid_matter.bpmn": changed})
    admin = headers("process_admin")
    diff = client.get("/definitions/grid_matter/compare?from=1&to=2", headers=admin)
    assert diff.status_code == 200
    body = diff.json
    assert (body["from_version"], body["to_version"], body["equivalent"]) == (1, 2, False)
    elements = {e["id"]: e for e in body["files"][0]["elements"]}
    assert elements["handle"]["changes"] == [{"aspect": "form", "key": "final", "before": "bool?", "after": "bool"}]
    assert elements["follow_up_window"]["changes"] == [
        {"aspect": "timer", "key": "timeDuration", "before": '"P7D"', "after": '"P10D"'}]
    assert body["counts"] == {"added": 0, "removed": 0, "changed": 2}
    same = client.get("/definitions/grid_matter/compare?from=2&to=2", headers=admin).json
    assert same["equivalent"] is True and same["files"][0]["change"] == "unchanged"

    assert client.get("/definitions/grid_matter/compare?from=1&to=9", headers=admin).status_code == 404
    assert client.get("/definitions/nothing/compare?from=1&to=2", headers=admin).status_code == 404
    for bad in ("from=0&to=1", "from=abc&to=1", "to=2", "from=1&to=99999999999999999999"):
        response = client.get(f"/definitions/grid_matter/compare?{bad}", headers=admin)
        assert response.status_code == 422, bad
        assert response.json["error"]["code"] == "validation_failed"


def test_a_bundle_of_bpmn_and_dmn_is_deployed_in_one_upload(client):
    body = """<bpmn:businessRuleTask id="rt"><bpmn:extensionElements>
      <spiffworkflow:calledDecisionId>route</spiffworkflow:calledDecisionId></bpmn:extensionElements>
    </bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="rt"/>
    <bpmn:sequenceFlow id="f2" sourceRef="rt" targetRef="end"/>"""
    response = upload(client, {"p.bpmn": tiny(body), "route.dmn": DMN.format(policy="UNIQUE").encode()})
    assert response.status_code == 201
    files = client.get("/definitions/tiny/versions/1", headers=headers("platform")).json["files"]
    assert [(f["name"], f["kind"]) for f in files] == [("p.bpmn", "bpmn"), ("route.dmn", "dmn")]
    changed = DMN.format(policy="UNIQUE").replace('"城管"', '"住建"').encode()
    assert upload(client, {"p.bpmn": tiny(body), "route.dmn": changed}).status_code == 201
    diff = client.get("/definitions/tiny/compare?from=1&to=2", headers=headers("auditor")).json
    dmn = next(f for f in diff["files"] if f["file"] == "route.dmn")
    assert dmn["elements"] == [{"id": "r1", "type": "rule", "name": "", "change": "changed", "changes": [
        {"aspect": "cell", "key": "output: unit", "before": '"城管"', "after": '"住建"'}]}]


def test_a_refused_deploy_is_422_listing_file_and_element_and_changes_nothing(client, engine):
    response = upload(client, {"nolane.bpmn": tiny(USER_TASK)})
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "definition_rejected"
    assert error["details"][0]["file"] == "nolane.bpmn" and error["details"][0]["element"] == "t1"
    assert "lane" in error["details"][0]["message"]
    assert engine.definitions.list() == []


@pytest.mark.parametrize("files, message", [
    ({"notes.txt": b"hello"}, "only .bpmn and .dmn"),
    ({"broken.bpmn": b"<bpmn:definitions"}, "malformed XML"),
    ({"bomb.bpmn": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'}, "unsafe XML"),
    ([("a.bpmn", GRID_MATTER), ("a.bpmn", GRID_MATTER)], "sent twice"),
    ({"big.bpmn": b"<x>" + b" " * (2 * 1024 * 1024) + b"</x>"}, "the limit is"),
])
def test_bad_uploads_are_refused_cleanly(client, engine, files, message):
    response = upload(client, files)
    assert response.status_code == 422, response.json
    assert message in str(response.json["error"]["details"])
    assert engine.definitions.list() == []


def test_no_files_and_oversized_bodies(client):
    admin = headers("process_admin")
    empty = client.post("/definitions", headers=admin, data={}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "files" in str(empty.json["error"]["details"])
    as_json = client.post("/definitions", headers=admin, json={"files": ["x"]})
    assert as_json.status_code == 422
    huge = client.post("/definitions", headers=admin, content_type="multipart/form-data; boundary=x",
                       data=b"--x\r\n" + b"a" * (12 * 1024 * 1024))
    assert huge.status_code == 413 and huge.json["error"]["code"] == "payload_too_large"


def test_unknown_keys_versions_and_files_are_404(client):
    upload(client, {"grid_matter.bpmn": GRID_MATTER})
    admin = headers("process_admin")
    for path in ("/definitions/nothing", "/definitions/grid_matter/versions/7",
                 "/definitions/grid_matter/versions/99999999999999999999",
                 "/definitions/grid_matter/versions/1/files/other.bpmn"):
        response = client.get(path, headers=admin)
        assert response.status_code == 404, path
        assert response.json["error"]["code"] == "not_found"


def test_the_openapi_description_lists_these_endpoints(client):
    spec = client.get("/openapi.json").json
    for path in ("/definitions", "/definitions/{key}", "/definitions/{key}/versions/{version}",
                 "/definitions/{key}/versions/{version}/files/{filename}", "/definitions/{key}/compare"):
        assert path in spec["paths"], path
    deploy = spec["paths"]["/definitions"]["post"]
    assert "multipart/form-data" in deploy["requestBody"]["content"]
    assert {"200", "201", "422"} <= set(deploy["responses"])


def test_a_retried_upload_with_its_idempotency_key_is_replayed_though_its_boundary_differs(client, engine):
    def deploy(boundary, content=GRID_MATTER):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"grid_matter.bpmn\"\r\n"
                f"Content-Type: application/xml\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        return client.post("/definitions", data=body, headers={
            **headers("process_admin"), "Idempotency-Key": "deploy-1",
            "Content-Type": f"multipart/form-data; boundary={boundary}"})

    first = deploy("aaaa1111")
    assert first.status_code == 201
    again = deploy("bbbb2222")   # a client re-encodes its form on retry: a new random boundary
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    other = deploy("cccc3333", GRID_MATTER.replace(b"P7D", b"P9D"))   # another file under the same key
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "idempotency_key_reused"
    assert [d.version for d in engine.definitions.list() if d.key == "grid_matter"] == [1]
