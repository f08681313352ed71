"""GET /statistics end to end: JSON per scope, drill-down URLs that /cases answers with exactly the cases
counted, CSV and .xlsx files with the same numbers, the figures as Prometheus gauges, clear refusals."""
from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from .api_fixtures import UNIT, api  # noqa: F401  (fixture)

RANGE = "start=2026-11-01&end=2026-12-01"


def _month(api):
    """Three matters in November: one handled and closed on time, one left unsigned, one in the other grid."""
    closed, handle = api.walk_to_handle()
    assert api.call("post", f"/tasks/{handle}/sign", "unit").status_code == 200
    assert api.call("post", f"/tasks/{handle}/complete", "unit",
                    {"data": {"result": "已修复", "final": True}}).status_code == 200
    check = api.task_of(closed, "check_result")
    assert api.call("post", f"/tasks/{check}/complete", "worker", {"data": {"passed": True}}).status_code == 200
    close = api.task_of(closed, "close_case")
    assert api.call("post", f"/tasks/{close}/complete", "agency", {"data": {}}).json["status"] == "closed"
    unsigned, _ = api.walk_to_handle()
    other = api.call("post", "/cases", "worker_other", {"process_key": "grid_matter",
                                                        "data": {"title": "井盖缺失", "category": "安全隐患排查"}})
    assert other.status_code == 201
    return closed, unsigned, other.json["id"]


def _total(body):
    return next(r for r in body["rows"] if r["group"] == "*")["figures"]


def test_figures_as_json_with_drill_down_urls(api):
    closed, unsigned, other = _month(api)
    got = api.call("get", f"/statistics?{RANGE}&group_by=community", "auditor")
    assert got.status_code == 200, got.json
    body = got.json
    assert body["rules"]["figures"] and body["as_of"]
    figures = _total(body)
    assert figures["reported"]["value"] == 3
    sign = figures["timely_sign_rate"]
    assert (sign["value"], sign["numerator"], sign["denominator"]) == (0.5, 1, 2)
    listed = api.call("get", sign["cases"]["denominator"], "auditor")
    assert listed.status_code == 200, listed.json
    assert {c["id"] for c in listed.json["items"]} == {closed, unsigned} and listed.json["total"] == 2
    numerator = api.call("get", sign["cases"]["numerator"], "auditor").json
    assert [c["id"] for c in numerator["items"]] == [closed]
    groups = {r["group"] for r in body["rows"]}
    assert groups == {"410702001001", "410702001002", "*"}


def test_each_principal_sees_only_its_scope(api):
    _month(api)
    worker_other = _total(api.call("get", f"/statistics?{RANGE}", "worker_other").json)
    assert worker_other["reported"]["value"] == 1
    agency = _total(api.call("get", f"/statistics?{RANGE}", "agency").json)
    assert agency["reported"]["value"] == 2
    unit = api.call("get", f"/statistics?{RANGE}&group_by=unit", "unit").json
    assert {r["group"] for r in unit["rows"]} == {UNIT, "*"}
    assert _total(unit)["closed"]["value"] == 1
    other_unit = _total(api.call("get", f"/statistics?{RANGE}", "unit_other").json) if api.call(
        "get", f"/statistics?{RANGE}", "unit_other").json["rows"] else None
    assert other_unit is None                         # nothing was dispatched to it
    refused = api.call("get", f"/statistics?{RANGE}", "admin")
    assert refused.status_code == 403 and refused.json["error"]["message"]["zh"]


def test_csv_and_xlsx_exports_hold_the_same_numbers(api):
    _month(api)
    body = api.call("get", f"/statistics?{RANGE}", "auditor").json
    expected = {(r["period"], r["group"]): r["figures"] for r in body["rows"]}
    as_of = body["as_of"]
    sheet = api.call("get", f"/statistics?{RANGE}&format=csv&as_of={as_of.replace('+', '%2B')}", "auditor")
    assert sheet.status_code == 200 and sheet.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(sheet.data.decode("utf-8-sig"))))
    assert len(rows) == len(expected)
    for row in rows:
        figures = expected[(row["period"], row["group"])]
        assert int(row["reported"]) == figures["reported"]["value"]
        assert int(row["timely_sign_rate.denominator"]) == figures["timely_sign_rate"]["denominator"]
    book = api.call("get", f"/statistics?{RANGE}&format=xlsx", "auditor")
    assert book.status_code == 200
    table = list(load_workbook(io.BytesIO(book.data), read_only=True).worksheets[0].iter_rows(values_only=True))
    header = table[0]
    for line in table[1:]:
        cells = dict(zip(header, line))
        figures = expected[(cells["period"], cells["group"])]
        assert cells["closed_on_time_rate"] == figures["closed_on_time_rate"]["value"]
        assert cells["reported"] == figures["reported"]["value"]


def test_bad_requests_answer_in_both_languages(api):
    for query in ("start=2026-11-01", "start=2026-12-01&end=2026-11-01", f"{RANGE}&period=fortnight",
                  f"{RANGE}&figure=nope", f"{RANGE}&area=abc"):
        got = api.call("get", f"/statistics?{query}", "auditor")
        assert got.status_code == 422, (query, got.json)
        assert got.json["error"]["message"]["zh"] and got.json["error"]["message"]["en"]
    half = api.call("get", "/cases?figure=reported", "auditor")
    assert half.status_code == 422 and "period_start" in half.json["error"]["message"]["en"]


def test_definitions_and_gauges(api):
    _month(api)
    defs = api.call("get", "/statistics/definitions", "auditor").json
    assert any(f["name"] == "closed_on_time_rate" and f["zh"] == "按期结案率" for f in defs["figures"])
    metrics = api.call("get", "/metrics", "platform").get_data(as_text=True)
    assert "gridflow_statistics_closed_on_time_rate" in metrics and "gridflow_statistics_reported" in metrics
