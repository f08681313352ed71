"""The grid registry (条例 §7–§11) on SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook

from engine.errors import NotFound
from engine.registry import RegistryError, RegistryImportError

DIVISIONS = ("code,name,level,parent_code,supervision_phone\n"
             "410702,红旗区,county,410700,0373-5010345\n"
             "410702001,东风街道,township,410702,\n"
             "410702001001,东风社区,community,410702001,\n").encode()
GRIDS = ("code,name,households,boundary,effective_from\n"
         "410702001001U001,东风社区第一网格,420,东至建设路，西至和平路,2026-01-01\n"
         "410702001001U002,东风社区第二网格,612,东至和平路，西至新华街,2026-01-01\n"
         "410702001001E001,东风农贸市场专属网格,0,市场围墙以内,2026-01-01\n").encode()
WORKERS = ("grid_code,name,phone,employment,effective_from\n"
           "410702001001U001,王秀英,13903731001,full_time,2026-01-01\n"
           "410702001001U001,李志强,13803731002,兼职,2026-01-01\n"
           "410702001001U002,张海燕,13903731003,part_time,2026-01-01\n"
           "410702001001E001,刘伟,13903731004,full_time,2026-01-01\n").encode()


@pytest.fixture
def registry(engine, clock):
    store = engine.registry
    store.import_csv("divisions", DIVISIONS, "admin", clock=clock)
    store.import_csv("grids", GRIDS, "admin", clock=clock)
    store.import_csv("workers", WORKERS, "admin", clock=clock)
    return store


def test_import_reports_every_bad_row_and_changes_nothing(registry, clock):
    before = {kind: registry.export_csv(kind) for kind in ("divisions", "grids", "workers")}
    filings = len(registry.filings())
    bad = ("code,name,households,boundary\n"
           "410702001001U003,好网格,400,东至建设路\n"              # row 2: fine on its own
           "410702001001X004,坏类型,400,东至建设路\n"              # row 3: unknown type letter
           "410702009009U001,无社区,400,东至建设路\n"              # row 4: unknown parent division
           "410702001001U003,重复,400,东至建设路\n"                # row 5: duplicate of row 2
           "410702001001U005,,-3,\n").encode()                     # row 6: empty name, bad households, no boundary
    with pytest.raises(RegistryImportError) as caught:
        registry.import_csv("grids", bad, "admin", clock=clock)
    rows = {(p.row, p.column) for p in caught.value.problems}
    assert {(3, "code"), (4, "code"), (5, "code"), (6, "name"), (6, "households"), (6, "boundary")} <= rows
    assert not any(p.row == 2 for p in caught.value.problems)
    assert "unknown parent division 410702009009" in str(caught.value)
    assert "row 5" in str(caught.value) and "duplicate" in str(caught.value)
    assert {kind: registry.export_csv(kind) for kind in before} == before
    assert len(registry.filings()) == filings


def test_import_errors_for_workers_divisions_and_columns(registry, clock):
    with pytest.raises(RegistryImportError) as caught:
        registry.import_csv("workers", ("grid_code,name,phone,employment\n"
                                        "410702001001U099,赵敏,13903739999,full_time\n"
                                        "410702001001U001,孙磊,not-a-phone,boss\n").encode(), "admin", clock=clock)
    assert {(p.row, p.column) for p in caught.value.problems} == {(2, "grid_code"), (3, "phone"),
                                                                   (3, "employment")}
    assert "unknown worker grid" in str(caught.value)
    with pytest.raises(RegistryImportError) as caught:
        registry.import_csv("divisions", "code,name\n410702002001,无街道社区\n".encode(), "admin", clock=clock)
    assert "unknown parent division 410702002" in str(caught.value)
    with pytest.raises(RegistryImportError) as caught:
        registry.import_csv("grids", b"code,name\n410702001001U009,x\n", "admin", clock=clock)
    assert {(p.row, p.column) for p in caught.value.problems} == {(1, "households"), (1, "boundary")}
    # A registered grid cannot be changed by import: that is what redraw and recode are for.
    with pytest.raises(RegistryImportError, match="redraw or recode"):
        registry.import_csv("grids", "code,name,households,boundary\n"
                                     "410702001001U001,东风社区第一网格,421,东至建设路，西至和平路\n".encode(),
                            "admin", clock=clock)
    assert registry.count("workers") == 4


def test_csv_and_xlsx_round_trip(registry, engine, clock, tmp_path):
    from engine.service import Engine

    for kind in ("divisions", "grids", "workers"):
        # Re-importing an export into the same registry changes nothing.
        assert registry.import_csv(kind, registry.export_csv(kind), "admin", clock=clock).added == 0
        assert registry.import_xlsx(kind, registry.export_xlsx(kind), "admin", clock=clock).added == 0
    other = Engine(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        for kind in ("divisions", "grids", "workers"):
            result = other.registry.import_xlsx(kind, registry.export_xlsx(kind), "admin", clock=clock)
            assert result.added == registry.count(kind)
            assert other.registry.export_csv(kind) == registry.export_csv(kind)
    finally:
        other.close()


def test_xlsx_errors_carry_spreadsheet_rows(registry, clock):
    book = Workbook()
    sheet = book.active
    sheet.append(["grid_code", "name", "phone", "employment"])
    sheet.append(["410702001001U002", "周杰", "13903731010", "full_time"])
    sheet.append([None, None, None, None])
    sheet.append(["410702001001U002", "周杰", "13903731010", "full_time"])
    data = io.BytesIO()
    book.save(data)
    with pytest.raises(RegistryImportError) as caught:
        registry.import_xlsx("workers", data.getvalue(), "admin", clock=clock)
    assert [(p.row, p.column) for p in caught.value.problems] == [(4, "name")]
    with pytest.raises(RegistryImportError, match="not an Excel workbook"):
        registry.import_xlsx("workers", b"not a zip", "admin", clock=clock)


def test_recode_keeps_history_moves_workers_and_files(registry, clock):
    registry.recode_grid("410702001001U002", "410702001001U004", "county-admin", date(2026, 6, 1),
                         reason="numbering fixed", clock=clock)
    with pytest.raises(NotFound, match="retired on 2026-06-01"):
        registry.grid("410702001001U002")
    history = registry.grid_history("410702001001U004")
    assert [(g.code, g.effective_from, g.effective_to) for g in history] == [
        ("410702001001U002", date(2026, 1, 1), date(2026, 6, 1)), ("410702001001U004", date(2026, 6, 1), None)]
    assert [w.name for w in registry.workers("410702001001U004")] == ["张海燕"]
    old = registry.workers("410702001001U002", current=False)
    assert [(w.name, w.effective_to) for w in old] == [("张海燕", date(2026, 6, 1))]
    filing = registry.filings("410702001001U004")[-1]
    assert filing.kind == "grid_recoded" and filing.created_by == "county-admin"
    assert filing.payload["old_code"] == "410702001001U002" and filing.payload["reason"] == "numbering fixed"
    # A retired code is never given to another area, and neither is one in use.
    with pytest.raises(RegistryError, match="retired"):
        registry.recode_grid("410702001001U001", "410702001001U002", "a", date(2026, 7, 1), clock=clock)
    with pytest.raises(RegistryError, match="in use"):
        registry.recode_grid("410702001001U001", "410702001001E001", "a", date(2026, 7, 1), clock=clock)
    with pytest.raises(RegistryError, match="invalid grid code"):
        registry.recode_grid("410702001001U001", "410702001001Z001", "a", date(2026, 7, 1), clock=clock)
    with pytest.raises(RegistryError, match="retired"):
        registry.import_csv("grids", "code,name,households,boundary\n410702001001U002,新,400,某处\n".encode(),
                            "admin", clock=clock)


def test_redraw_keeps_history_and_files(registry, clock):
    registry.redraw_grid("410702001001U002", 480, "东至和平路，西至新华街，南至人民路", "county-admin",
                         date(2026, 9, 1), clock=clock)
    history = registry.grid_history("410702001001U002")
    assert [(g.households, g.effective_to) for g in history] == [(612, date(2026, 9, 1)), (480, None)]
    filing = registry.filings("410702001001U002")[-1]
    assert filing.kind == "grid_redrawn"
    assert filing.payload["before"]["households"] == 612 and filing.payload["after"]["households"] == 480
    assert [f.kind for f in registry.filings("410702001001U002")] == ["grid_created", "grid_redrawn"]
    with pytest.raises(RegistryError, match="cannot take effect before"):
        registry.redraw_grid("410702001001U002", 470, "x", "a", date(2026, 8, 1), clock=clock)
    assert registry.household_warnings() == []


def test_grids_without_full_time_worker(registry, clock):
    missing = registry.grids_without_full_time_worker(date(2026, 3, 1))
    assert [(g["code"], g["part_time_workers"]) for g in missing] == [("410702001001U002", 1)]
    # Before anyone was registered, no grid existed either.
    assert registry.grids_without_full_time_worker(date(2025, 12, 31)) == []


def test_household_warnings_only_for_urban_grids(registry):
    warnings = registry.household_warnings()
    assert [(w["code"], w["households"]) for w in warnings] == [("410702001001U002", 612)]
    assert "300–500" in warnings[0]["warning"]


def test_public_notice_lists_only_what_is_posted(registry):
    notice = registry.public_notice("410702001001U001")
    assert set(notice) == {"grid_code", "grid_name", "grid_type", "area", "workers", "duties", "supervision_phone"}
    assert notice["workers"] == [{"name": "王秀英", "role": "专职网格员", "phone": "13903731001"},
                                 {"name": "李志强", "role": "兼职网格员", "phone": "13803731002"}]
    assert notice["supervision_phone"] == "0373-5010345"   # neither community nor street has its own
    assert notice["area"] == "东至建设路，西至和平路"
    text = registry.public_notice_csv(["410702001001U001", "410702001001U002"]).decode("utf-8-sig")
    header = text.splitlines()[0].split(",")
    assert header == ["grid_code", "grid_name", "area", "worker_name", "worker_role", "phone", "duties",
                      "supervision_phone"]
    assert len(text.splitlines()) == 4 and "households" not in text and "effective_from" not in text


def test_public_notice_html_escapes(engine, clock):
    store = engine.registry
    store.import_csv("divisions", DIVISIONS, "admin", clock=clock)
    store.import_csv("grids", ('code,name,households,boundary\n'
                               '410702001001U001,<script>alert(1)</script>,400,"A & B <b>路</b>"\n').encode(),
                     "admin", clock=clock)
    store.import_csv("workers", 'grid_code,name,phone,employment\n410702001001U001,"O\'Neil<i>",13903731001,'
                     'full_time\n'.encode(), "admin", clock=clock)
    page = store.public_notice_html("410702001001U001")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "A &amp; B &lt;b&gt;路&lt;/b&gt;" in page and "O&#x27;Neil&lt;i&gt;" in page
    assert "http://" not in page and "https://" not in page   # nothing from a CDN
    assert "监督电话：0373-5010345" in page


def test_sample_loads_twice_idempotently(engine):
    store = engine.registry
    first = store.load_sample("admin")
    assert [r.added for r in first] == [store.count(k) for k in ("divisions", "grids", "workers")]
    assert 40 <= store.count("grids") <= 60 and 60 <= store.count("workers") <= 80
    exports = {k: store.export_csv(k) for k in ("divisions", "grids", "workers")}
    filings = len(store.filings())
    second = store.load_sample("admin")
    assert [r.added for r in second] == [0, 0, 0]
    assert {k: store.export_csv(k) for k in exports} == exports and len(store.filings()) == filings
    assert {u.code for u in store.units()} >= {"hq_huanwei", "hq_water"}
    assert store.grids_without_full_time_worker(date(2026, 11, 2))
    assert store.household_warnings()
    assert {g for g in (r.split(",")[2] for r in exports["grids"].decode("utf-8-sig").splitlines()[1:])} == {
        "U", "R", "E"}


def test_agency_for(engine):
    store = engine.registry
    assert store.agency_for("410702001002U003", "community") == "410702001002"
    assert store.agency_for("410702001002U003", "township") == "410702001"
    assert store.agency_for("410702001002U003", "county") == "410702"
    assert store.agency_for("410702001002U003", "city") == "410700"
    with pytest.raises(RegistryError, match="unknown agency level"):
        store.agency_for("410702001002U003", "province")
    with pytest.raises(RegistryError):
        store.agency_for("4107020010U3", "county")


def test_cli_registry_commands(tmp_path):
    from tests.test_cli import gridflow

    assert "grids: 47 added" in gridflow(tmp_path, "registry", "sample").stdout
    assert "grids: 0 added, 47 already registered" in gridflow(tmp_path, "registry", "sample").stdout
    check = gridflow(tmp_path, "registry", "check", "--date", "2026-11-02").stdout
    assert "grids without a full-time worker (条例 §10): 2" in check and "612" in check
    out = tmp_path / "grids.xlsx"
    gridflow(tmp_path, "registry", "export", "grids", "--format", "xlsx", "--out", str(out))
    assert "0 added, 47 already registered" in gridflow(tmp_path, "registry", "import", "grids", str(out)).stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,households,boundary\n410702001001X001,a,1,b\n", encoding="utf-8")
    refused = gridflow(tmp_path, "registry", "import", "grids", str(bad), check=False)
    assert refused.returncode == 1 and "nothing was changed" in refused.stderr
    assert "bad.csv, row 2, column code: unknown grid type 'X'" in refused.stderr
    assert "Traceback" not in refused.stderr
    page = tmp_path / "notice.html"
    shown = gridflow(tmp_path, "registry", "notice", "410702001001U001", "--html", str(page)).stdout
    assert "监督电话" in shown and "<!DOCTYPE html>" in page.read_text(encoding="utf-8")
