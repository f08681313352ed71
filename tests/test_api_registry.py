"""HTTP: the grid registry, the catalog, the negative list and routing; imports by row; who sees what."""
import csv
import io
import re
from html.parser import HTMLParser

import pytest

from engine.registry.common import MAX_UPLOAD_BYTES
from tests.test_api_definitions import GRID, KEY, PRINCIPALS, ROLES, expected, headers  # noqa: F401

SUPERVISORS = {"process_admin", "auditor", "platform", "grid_agency"}
EVERYONE = set(PRINCIPALS)


@pytest.fixture
def client(engine):
    from api.http.app import create_app

    engine.registry.load_sample("admin")
    return create_app(engine, {"GRIDFLOW_JWT_KEY": KEY, "TESTING": True}).test_client()


def send_sheet(client, kind, name, content, role="process_admin"):
    return client.post(f"/registry/import/{kind}", headers=headers(role),
                       data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


READS = {
    "/registry/divisions": EVERYONE,
    "/registry/grids": EVERYONE,
    "/registry/grids?division=410702001001": EVERYONE,
    f"/registry/grids/{GRID}": EVERYONE,
    f"/registry/grids/{GRID}/workers": EVERYONE,
    f"/registry/grids/{GRID}/notice": EVERYONE,
    f"/registry/grids/{GRID}/notice?format=csv": EVERYONE,
    f"/registry/grids/{GRID}/notice?format=html": EVERYONE,
    "/registry/notices?division=410702001": EVERYONE,
    "/registry/units": EVERYONE,
    "/catalog": EVERYONE,
    "/catalog/sub-categories/public_opinion": EVERYONE,
    "/catalog/negative-list": EVERYONE,
    f"/catalog/routing?sub_category=population_info_update&level=township&area={GRID}": EVERYONE,
    f"/registry/grids/{GRID}/history": SUPERVISORS,
    "/registry/check": SUPERVISORS,
    "/registry/filings": SUPERVISORS,
    f"/registry/filings?grid={GRID}": SUPERVISORS,
    "/registry/export/grids": {"process_admin", "auditor"},
    "/registry/export/workers?format=xlsx": {"process_admin", "auditor"},
    f"/registry/grids/{GRID}/workers?past=true": {"process_admin", "auditor"},
}
WRITES = {   # path → a body that the administrator's own tests below send for real
    f"/registry/grids/{GRID}/recode": {"new_code": "410702001001U901"},
    f"/registry/grids/{GRID}/redraw": {"households": 400, "boundary": "东至劳动街"},
    "/registry/grids/merge": {"codes": [GRID, "410702001001U002"], "into_code": GRID, "boundary": "x",
                              "reason": "r"},
    f"/registry/grids/{GRID}/split": {"parts": [], "reason": "r"},
}


def test_role_table_for_reads(client):
    seen = {(path, role): client.get(path, headers=headers(role)).status_code for path in READS for role in ROLES}
    assert seen == {(path, role): expected(role, allowed, 200) for path, allowed in READS.items() for role in ROLES}


def test_role_table_for_writes(client, engine):
    # The administrator's successful writes are the round trips below; here every other role is refused
    # before anything is read or changed.
    before = engine.registry.export_csv("grids")
    seen = {}
    for path, body in WRITES.items():
        for role in ROLES:
            if role != "process_admin":
                seen[(path, role)] = client.post(path, headers=headers(role), json=body).status_code
    sheet = engine.registry.export_csv("divisions")
    for role in ROLES:
        seen[("import", role)] = send_sheet(client, "divisions", "divisions.csv", sheet, role).status_code
    want = {(path, role): expected(role, (), 0) for path in WRITES for role in ROLES if role != "process_admin"}
    want.update({("import", role): expected(role, {"process_admin"}, 200) for role in ROLES})
    assert seen == want
    assert engine.registry.export_csv("grids") == before


def test_workers_show_public_fields_unless_the_role_needs_the_record(client):
    public_keys = {"name", "role", "employment", "phone"}
    for role in ("grid_worker", "grid_agency", "responsible_unit", "platform"):
        body = client.get(f"/registry/grids/{GRID}/workers", headers=headers(role)).json
        assert body["record"] == "public"
        assert body["workers"] and all(set(w) == public_keys for w in body["workers"])
    full = client.get(f"/registry/grids/{GRID}/workers", headers=headers("process_admin")).json
    assert full["record"] == "full"
    assert {"effective_from", "created_by", "id"} <= set(full["workers"][0])
    denied = client.get(f"/registry/grids/{GRID}/workers?past=1", headers=headers("grid_worker"))
    assert denied.status_code == 403 and denied.json["error"]["code"] == "forbidden"
    notice = client.get(f"/registry/grids/{GRID}/notice", headers=headers("responsible_unit")).json
    assert all(set(w) == {"name", "role", "phone"} for w in notice["workers"])
    assert client.get("/registry/grids/410702001001U999/workers", headers=headers("auditor")).status_code == 404


def test_import_errors_come_back_by_row_and_nothing_changes(client, engine):
    before = engine.registry.count("workers")
    sheet = ("grid_code,name,phone,employment\r\n"
             f"{GRID},张三,13800000001,full_time\r\n"
             "410702001001U999,李四,13800000002,full_time\r\n"
             f"{GRID},王五,not-a-phone,sometimes\r\n").encode()
    response = send_sheet(client, "workers", "workers.csv", sheet)
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "registry_import_refused"
    by_row = {(p["row"], p["column"]) for p in error["details"]}
    assert by_row == {(3, "grid_code"), (4, "phone"), (4, "employment")}
    assert all(p["file"] == "workers.csv" for p in error["details"])
    assert engine.registry.count("workers") == before

    good = sheet.split(b"\r\n")[0] + b"\r\n" + sheet.split(b"\r\n")[1] + b"\r\n"
    added = send_sheet(client, "workers", "workers.csv", good)
    assert added.status_code == 201 and added.json == {"kind": "workers", "added": 1, "unchanged": 0}
    assert send_sheet(client, "workers", "workers.csv", good).json == {"kind": "workers", "added": 0, "unchanged": 1}


def test_export_and_reimport_as_xlsx_and_csv(client):
    admin = headers("process_admin")
    xlsx = client.get("/registry/export/grids?format=xlsx", headers=admin)
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in xlsx.headers["Content-Disposition"]
    again = send_sheet(client, "grids", "grids.xlsx", xlsx.data)
    assert again.status_code == 200 and again.json["added"] == 0 and again.json["unchanged"] == 47
    exported = client.get("/registry/export/grids", headers=admin)
    rows = list(csv.reader(io.StringIO(exported.data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["code", "name"] and len(rows) == 48
    assert client.get("/registry/export/people", headers=admin).status_code == 404
    assert client.get("/registry/export/grids?format=pdf", headers=admin).status_code == 422


def test_bad_sheets_are_refused_cleanly(client):
    wrong_type = send_sheet(client, "grids", "grids.pdf", b"%PDF")
    assert wrong_type.status_code == 422 and wrong_type.json["error"]["code"] == "registry_import_refused"
    not_xlsx = send_sheet(client, "grids", "grids.xlsx", b"PK\x03\x04 not really")
    assert not_xlsx.status_code == 422 and "Excel" in str(not_xlsx.json["error"]["details"])
    no_file = client.post("/registry/import/grids", headers=headers("process_admin"), data={},
                          content_type="multipart/form-data")
    assert no_file.status_code == 422
    unknown = send_sheet(client, "people", "people.csv", b"a,b\r\n")
    assert unknown.status_code == 404
    huge = send_sheet(client, "grids", "grids.csv", b"x" * (MAX_UPLOAD_BYTES + 128 * 1024))
    assert huge.status_code == 413


def test_recode_redraw_and_history_with_filings(client):
    admin = headers("process_admin")
    redrawn = client.post(f"/registry/grids/{GRID}/redraw", headers=admin, json={
        "households": 520, "boundary": "东至劳动街，西至向阳路，南至荣校路，北至解放路", "effective_from": "2026-11-01",
        "reason": "小区扩建"})
    assert redrawn.status_code == 201
    assert redrawn.json["households"] == 520 and "500" in redrawn.json["household_warning"]
    recoded = client.post(f"/registry/grids/{GRID}/recode", headers=admin,
                          json={"new_code": "410702001001U901", "effective_from": "2026-11-20", "reason": "重新编号"})
    assert recoded.status_code == 201 and recoded.headers["Location"].endswith("/registry/grids/410702001001U901")
    assert client.get(f"/registry/grids/{GRID}", headers=admin).status_code == 404
    as_was = client.get(f"/registry/grids/{GRID}?on=2026-06-01", headers=admin)
    assert as_was.status_code == 200 and as_was.json["households"] == 377
    history = client.get("/registry/grids/410702001001U901/history", headers=headers("auditor")).json
    assert [(r["code"], r["households"]) for r in history["rows"]] == \
        [(GRID, 377), (GRID, 520), ("410702001001U901", 520)]
    assert [f["kind"] for f in history["filings"]] == ["grid_created", "grid_redrawn", "grid_recoded"]
    # The retired code's workers are past assignments now; they serve on under the new code.
    assert client.get(f"/registry/grids/{GRID}/workers", headers=admin).status_code == 404
    past = client.get(f"/registry/grids/{GRID}/workers?past=true", headers=admin).json["workers"]
    assert past and all(w["effective_to"] == "2026-11-20" for w in past)
    now = client.get("/registry/grids/410702001001U901/workers", headers=admin).json["workers"]
    assert sorted(w["name"] for w in now) == sorted(w["name"] for w in past)
    filings = client.get("/registry/filings?grid=410702001001U901", headers=headers("grid_agency")).json
    assert filings[-1]["kind"] == "grid_recoded" and filings[-1]["created_by"] == "admin1"

    taken = client.post("/registry/grids/410702001001U002/recode", headers=admin,
                        json={"new_code": "410702001001U901"})
    assert taken.status_code == 422 and "in use" in taken.json["error"]["message"]["en"]
    bad = client.post("/registry/grids/410702001001U002/redraw", headers=admin, json={"households": -1})
    assert bad.status_code == 422 and {"households", "boundary"} <= set(bad.json["error"]["details"]["json"])


def test_merge_and_split(client):
    admin = headers("process_admin")
    merged = client.post("/registry/grids/merge", headers=admin, json={
        "codes": [GRID, "410702001001U002"], "into_code": GRID, "boundary": "两网格合并后的范围",
        "effective_from": "2026-11-10", "reason": "户数减少，合并管理"})
    assert merged.status_code == 201, merged.json
    body = merged.json
    assert body["kind"] == "grid_merged" and [g["code"] for g in body["opened"]] == [GRID]
    assert sorted(g["code"] for g in body["retired"]) == [GRID, "410702001001U002"]
    split = client.post(f"/registry/grids/{GRID}/split", headers=admin, json={
        "parts": [{"code": GRID, "name": "东风社区第一网格", "households": 380, "boundary": "北半部"},
                  {"code": "410702001001U950", "name": "东风社区新网格", "households": 364, "boundary": "南半部"}],
        "effective_from": "2026-11-20", "reason": "重新划分"})
    assert split.status_code == 201, split.json
    assert [g["code"] for g in split.json["opened"]] == [GRID, "410702001001U950"]
    assert client.get("/registry/grids/410702001001U950", headers=headers("grid_worker")).status_code == 200
    one = client.post("/registry/grids/merge", headers=admin, json={
        "codes": [GRID], "into_code": GRID, "boundary": "x", "reason": "r"})
    assert one.status_code == 422


def test_check_notices_and_units(client):
    check = client.get("/registry/check?on=2026-11-27", headers=headers("grid_agency")).json
    assert check["on"] == "2026-11-27"
    assert {"without_full_time_worker", "household_warnings"} <= set(check)
    html = client.get(f"/registry/grids/{GRID}/notice?format=html", headers=headers("grid_worker"))
    assert html.mimetype == "text/html" and "监督电话" in html.data.decode()
    notices = client.get("/registry/notices?division=410702001001", headers=headers("platform"))
    rows = list(csv.DictReader(io.StringIO(notices.data.decode("utf-8-sig"))))
    assert rows and {r["grid_code"][:12] for r in rows} == {"410702001001"}
    assert set(rows[0]) == {"grid_code", "grid_name", "area", "worker_name", "worker_role", "phone", "duties",
                            "supervision_phone"}
    assert client.get("/registry/notices?division=999999", headers=headers("platform")).status_code == 404
    units = client.get("/registry/units", headers=headers("responsible_unit")).json
    assert any(u["code"] == "hq_gongan" for u in units)


def test_catalog_negative_list_and_routing(client):
    catalog = client.get("/catalog", headers=headers("grid_worker")).json
    assert [c["name"] for c in catalog["categories"]][0] == "基础信息采集" and len(catalog["categories"]) == 9
    first = catalog["categories"][0]["sub_categories"][0]
    assert first["code"] == "population_info_update" and first["time_limits"]
    assert {"urgency", "handling_limit", "handling_unit"} <= set(first["time_limits"][0])
    detail = client.get("/catalog/sub-categories/population_info_update", headers=headers("grid_worker")).json
    assert {(r["level"], r["area"]) for r in detail["routing"]} >= {("county", "*"), ("township", "410702001")}
    assert client.get("/catalog/sub-categories/nope", headers=headers("grid_worker")).status_code == 404

    negative = client.get("/catalog/negative-list", headers=headers("grid_agency")).json
    assert "administrative_penalty" in negative["kinds"]
    assert all("第十四条" in e["citation"] for e in negative["entries"])

    agency = headers("grid_agency")
    here = client.get(f"/catalog/routing?sub_category=population_info_update&level=township&area={GRID}",
                      headers=agency).json
    assert (here["lead_unit"]["code"], here["level"], here["escalate"]) == ("hq_pcs_001", "township", False)
    elsewhere = client.get("/catalog/routing?sub_category=population_info_update&level=township&area=410702002",
                           headers=agency).json
    assert (elsewhere["lead_unit"]["code"], elsewhere["level"], elsewhere["escalate"]) == \
        ("hq_gongan", "county", True)
    assert [u["code"] for u in elsewhere["assisting_units"]] == ["hq_minzheng"]
    for query, status in (("sub_category=nope&level=township&area=410702", 422),
                          ("sub_category=population_info_update&level=village&area=410702", 422),
                          ("sub_category=population_info_update&level=township&area=41X", 422),
                          ("sub_category=population_info_update&level=city&area=410702", 404),
                          ("level=township&area=410702", 422)):
        response = client.get(f"/catalog/routing?{query}", headers=agency)
        assert response.status_code == status, (query, response.json)
        assert set(response.json["error"]) == {"code", "message", "details"}


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "spec-url", "data-spec-url") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_are_served_offline(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy and "connect-src 'self'" in policy
    parser = _Assets()
    parser.feed(response.data.decode())
    assert len(parser.urls) >= 2
    for url in parser.urls:
        assert not re.match(r"^([a-z]+:)?//", url, re.I), f"{page} references an external URL: {url}"
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.data) > 0
    assert "/openapi.json" in parser.urls
    if page == "/docs":
        init = client.get("/docs/assets/swagger-init.js").data.decode()
        assert "validatorUrl: null" in init   # no badge fetched from validator.swagger.io
    else:
        assert any(u.endswith("redoc.standalone.js") for u in parser.urls)
    assert client.get("/docs/assets/redoc-LICENSE").data.startswith(b"The MIT License")
    assert client.get("/docs/assets/..%2Fapp.py").status_code == 404
    assert client.get("/docs/assets/nothing.js").status_code == 404


def test_the_openapi_description_lists_registry_and_catalog(client):
    spec = client.get("/openapi.json").json
    for path in ("/registry/grids/{code}/workers", "/registry/import/{kind}", "/registry/grids/merge",
                 "/catalog", "/catalog/routing", "/catalog/negative-list"):
        assert path in spec["paths"], path
    assert not any(path.startswith(("/docs", "/redoc")) for path in spec["paths"])
