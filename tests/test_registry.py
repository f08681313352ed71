"""The grid registry (条例 §7–§11) on SQLite and PostgreSQL."""
from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook

from engine.errors import NotFound
from engine.registry.common import RegistryError, RegistryImportError

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


# ---- merge and split -------------------------------------------------------------------------------------------

U001, U002, E001 = "410702001001U001", "410702001001U002", "410702001001E001"


def _current_workers(registry, code):
    return sorted((w.name, w.employment) for w in registry.workers(code))


def _unchanged(registry):
    """Everything a refused change must leave as it was."""
    return ({kind: registry.export_csv(kind) for kind in ("divisions", "grids", "workers")},
            len(registry.filings()), len(registry.workers(current=False)))


def test_merge_into_a_new_code_moves_workers_and_files_once(registry, clock):
    filings = len(registry.filings())
    change = registry.merge_grids([U001, U002], "410702001001U003", "东风社区联合网格", 1032, "东至建设路，西至新华街",
                                  "county-admin", date(2026, 6, 1), "两网格合并", clock=clock)
    merged = change.opened[0]
    assert (merged.code, merged.households, merged.effective_from) == ("410702001001U003", 1032, date(2026, 6, 1))
    assert [(g.code, g.effective_to) for g in change.retired] == [(U001, date(2026, 6, 1)), (U002, date(2026, 6, 1))]
    # Workers: the old assignments end the day the merged grid begins.
    assert _current_workers(registry, "410702001001U003") == [("张海燕", "part_time"), ("李志强", "part_time"),
                                                               ("王秀英", "full_time")]
    assert registry.workers(U001) == [] and registry.workers(U002) == []
    old = registry.workers(U001, current=False) + registry.workers(U002, current=False)
    assert sorted((w.name, w.effective_from, w.effective_to) for w in old) == [
        ("张海燕", date(2026, 1, 1), date(2026, 6, 1)), ("李志强", date(2026, 1, 1), date(2026, 6, 1)),
        ("王秀英", date(2026, 1, 1), date(2026, 6, 1))]
    # One filing, naming every source; found from any of the codes.
    assert len(registry.filings()) == filings + 1
    filing = registry.filings()[-1]
    assert filing.id == change.filing_id and filing.kind == "grid_merged" and filing.created_by == "county-admin"
    assert [s["code"] for s in filing.payload["sources"]] == [U001, U002]
    assert filing.payload["result"]["code"] == "410702001001U003" and filing.payload["reason"] == "两网格合并"
    assert {w["name"] for w in filing.payload["workers_moved"]} == {"王秀英", "李志强", "张海燕"}
    assert all("phone" not in w for w in filing.payload["workers_moved"])
    assert registry.filings(U001)[-1].id == registry.filings(U002)[-1].id == filing.id
    assert any("1032 households is above" in w for w in change.warnings)
    # What each code meant on a day.
    with pytest.raises(NotFound, match="retired on 2026-06-01"):
        registry.grid(U001)
    assert registry.grid(U001, date(2026, 5, 31)).households == 420
    assert registry.grid("410702001001U003", date(2026, 6, 1)).id == merged.id
    with pytest.raises(NotFound, match="not in force on 2026-05-31; it was in force 2026-06-01 to now"):
        registry.grid("410702001001U003", date(2026, 5, 31))
    # History in both directions.
    assert [g.code for g in registry.grid_history("410702001001U003")] == [U001, U002, "410702001001U003"]
    assert [g.code for g in registry.grid_history(U002)] == [U002, "410702001001U003"]


def test_merge_keeping_a_code_folds_in_an_exclusive_grid(registry, clock):
    staying = {w.name: w.id for w in registry.workers(U001)}
    change = registry.merge_grids([U001, E001], U001, None, None, "东至建设路，西至和平路，含农贸市场",
                                  "county-admin", date(2026, 7, 1), "市场并入社区网格", clock=clock)
    merged = change.opened[0]
    # The kept code's name and type; households default to the sum (420 + 0).
    assert (merged.code, merged.name, merged.grid_type, merged.households) == (U001, "东风社区第一网格", "U", 420)
    assert merged.replaces_id == change.retired[0].id
    # The kept grid's workers keep their assignment; the market's worker moves.
    assert {w.name: w.id for w in registry.workers(U001) if w.name in staying} == staying
    assert _current_workers(registry, U001) == [("刘伟", "full_time"), ("李志强", "part_time"), ("王秀英", "full_time")]
    assert change.workers_moved == [
        {"name": "刘伟", "employment": "full_time", "from": E001, "to": U001}]
    assert registry.grid(U001, date(2026, 6, 30)).boundary == "东至建设路，西至和平路"
    assert registry.grid(U001).boundary == "东至建设路，西至和平路，含农贸市场"
    assert [(g.code, g.effective_to) for g in registry.grid_history(U001)] == [
        (U001, date(2026, 7, 1)), (E001, date(2026, 7, 1)), (U001, None)]
    assert registry.grid_history(E001)[-1].id == merged.id


def test_a_worker_of_two_merged_grids_serves_the_merged_grid_once(registry, clock):
    registry.import_csv("workers", "grid_code,name,phone,employment,effective_from\n"
                                   "410702001001U002,李志强,13803731002,full_time,2026-02-01\n".encode(),
                        "admin", clock=clock)
    registry.merge_grids([U001, U002], U001, None, 1032, "东至建设路，西至新华街", "a", date(2026, 6, 1), "合并",
                         clock=clock)
    # 李志强 was part-time in U001 and full-time in U002: one assignment, full-time.
    assert _current_workers(registry, U001) == [("张海燕", "part_time"), ("李志强", "full_time"),
                                                ("王秀英", "full_time")]
    assert [(w.employment, w.effective_to) for w in registry.workers(U001, current=False) if w.name == "李志强"] == [
        ("part_time", date(2026, 6, 1)), ("full_time", None)]


def test_merge_refusals_change_nothing(registry, clock):
    registry.import_csv("divisions", "code,name\n410702001002,和平社区\n".encode(), "admin", clock=clock)
    registry.import_csv("grids", "code,name,households,boundary,effective_from\n"
                                 "410702001002U001,和平社区第一网格,400,东至和平路,2026-01-01\n"
                                 "410702001001R001,东风村第一网格,80,东风村一组,2026-01-01\n"
                                 "410702001001U005,东风社区新网格,350,某处,2026-05-01\n".encode(), "admin", clock=clock)
    before = _unchanged(registry)
    merge = registry.merge_grids

    def refused(codes, into, message, on_date=date(2026, 6, 1), **kwargs):
        args = {"name": "合并网格", "households": 500, "boundary": "某处", "by": "a", "on_date": on_date,
                "reason": "合并", **kwargs}
        with pytest.raises(RegistryError, match=message):
            merge(codes, into, args.pop("name"), args.pop("households"), args.pop("boundary"), args.pop("by"),
                  args.pop("on_date"), args.pop("reason"), clock=clock)

    refused([U001], U001, "a merge joins 2 grids or more; given 1")
    refused([U001, U001], U001, "given 1")
    refused([U001, "410702001002U001"], U001, r"a merge cannot cross communities.*条例 §7")
    refused([U001, "410702001001R001"], U001, r"农村网格 and cannot be merged into .*城市社区网格.*条例 §8")
    refused([U001, U002], E001, r"cannot be merged into 410702001001E001, a 专属网格")   # ordinary into exclusive
    refused([U001, U002], "410702001001U005", "code 410702001001U005 is in use")
    refused([U001, "410702001001U005"], U001, "in force from 2026-05-01; a change cannot take effect before",
            on_date=date(2026, 4, 1))
    refused([U001, U002], U001, "reason", reason=" ")
    refused([U001, U002], U001, "households must be a whole number", households=-1)
    refused([U001, U002], "410702001001U009", "give it a name", name=None)
    with pytest.raises(NotFound, match="no grid 410702001001U099"):
        merge([U001, "410702001001U099"], U001, None, None, "x", "a", date(2026, 6, 1), "r", clock=clock)
    assert _unchanged(registry) == before
    # A retired code is never handed out again.
    registry.recode_grid(U002, "410702001001U006", "a", date(2026, 6, 1), clock=clock)
    refused([U001, "410702001001U006"], U002, "code 410702001001U002 is retired", on_date=date(2026, 7, 1))


def _part(code, name, households, boundary="某处"):
    return {"code": code, "name": name, "households": households, "boundary": boundary}


def test_split_keeping_the_code_and_the_section_10_check(registry, clock):
    old = registry.grid(U001)
    change = registry.split_grid(U001, [_part(U001, "东风社区第一网格", 300, "东至建设路，西至中山路"),
                                        _part("410702001001U004", "东风社区第四网格", 320, "东至中山路，西至和平路")],
                                 "county-admin", date(2026, 8, 1), "户数增长拆分", workers={"李志强": "410702001001U004"},
                                 clock=clock)
    assert [g.replaces_id for g in change.opened] == [old.id, old.id]
    assert change.retired[0].effective_to == date(2026, 8, 1)
    assert _current_workers(registry, U001) == [("王秀英", "full_time")]
    assert _current_workers(registry, "410702001001U004") == [("李志强", "part_time")]
    assert change.workers_unassigned == []
    # The part with only a part-timer shows in the §10 check from the split on, and in the change's warnings.
    missing = [g["code"] for g in registry.grids_without_full_time_worker(date(2026, 8, 1))]
    assert "410702001001U004" in missing and U001 not in missing
    assert "410702001001U004" not in [g["code"] for g in registry.grids_without_full_time_worker(date(2026, 7, 31))]
    assert any("410702001001U004: no full-time worker" in w and "§10" in w for w in change.warnings)
    filing = registry.filings()[-1]
    assert filing.kind == "grid_split" and filing.grid_code == U001 and filing.id == change.filing_id
    assert [p["code"] for p in filing.payload["parts"]] == [U001, "410702001001U004"]
    assert filing.payload["households_before"] == 420 and filing.payload["households_after"] == 620
    assert registry.filings("410702001001U004")[-1].id == filing.id
    assert registry.grid(U001, date(2026, 7, 31)).households == 420 and registry.grid(U001).households == 300
    # The old area became both parts: each part's history starts from it; U001's includes the new part.
    assert [(g.code, g.households) for g in registry.grid_history("410702001001U004")] == [
        (U001, 420), ("410702001001U004", 320)]
    assert [(g.code, g.households) for g in registry.grid_history(U001)] == [
        (U001, 420), (U001, 300), ("410702001001U004", 320)]


def test_split_into_new_codes_reports_unassigned_workers(registry, clock):
    change = registry.split_grid(U001, [_part("410702001001U005", "东片", 210), _part("410702001001E002", "东风小学专属网格", 0)],
                                 "a", date(2026, 8, 1), "学校单设专属网格", workers={"13903731001": "410702001001U005"},
                                 clock=clock)
    # A site carved out of an urban grid as an exclusive grid (条例 §8).
    assert [g.grid_type for g in change.opened] == ["U", "E"]
    with pytest.raises(NotFound, match="retired on 2026-08-01"):
        registry.grid(U001)
    assert change.workers_moved == [{"name": "王秀英", "employment": "full_time", "from": U001,
                                     "to": "410702001001U005"}]
    assert change.workers_unassigned == [{"name": "李志强", "employment": "part_time", "from": U001, "to": None}]
    assert registry.workers(U001) == [] and registry.workers(current=True, grid_code="410702001001E002") == []
    assert registry.filings()[-1].payload["workers_unassigned"][0]["name"] == "李志强"
    missing = [g["code"] for g in registry.grids_without_full_time_worker(date(2026, 8, 1))]
    assert "410702001001E002" in missing and "410702001001U005" not in missing


def test_split_refusals_change_nothing(registry, clock):
    before = _unchanged(registry)

    def refused(parts, message, on_date=date(2026, 8, 1), workers=None, code=U001, reason="拆分"):
        with pytest.raises(RegistryError, match=message):
            registry.split_grid(code, parts, "a", on_date, reason, workers=workers, clock=clock)

    a, b = _part("410702001001U005", "甲", 200), _part("410702001001U006", "乙", 220)
    refused([a], "a split makes 2 grids or more; given 1 part")
    refused([a, _part("410702001001U5", "乙", 1)], r"part 2 \(410702001001U5\): invalid grid code")
    refused([a, {**b, "name": ""}], "part 2 .* the name is empty")
    refused([a, {**b, "households": "many"}], "part 2 .* households must be a whole number")
    refused([a, {**b, "colour": "red"}], "unknown field")
    refused([a, a], "given to more than one part")
    refused([a, _part(E001, "乙", 1)], "code 410702001001E001 is in use")
    refused([a, _part("410702001002U001", "乙", 1)], "a split cannot cross communities")
    refused([a, _part("410702001001R002", "乙", 1)], r"城市社区网格 and cannot be split into .*农村网格.*条例 §8")
    refused([a, b], "in force from 2026-01-01", on_date=date(2025, 12, 31))
    refused([a, b], "赵六 is not a current worker of grid 410702001001U001; its workers are: 王秀英、李志强",
            workers={"赵六": "410702001001U005"})
    refused([a, b], "not one of the parts", workers={"王秀英": "410702001001U009"})
    refused([a, b], "assigned to both", workers={"王秀英": a["code"], "13903731001": b["code"]})
    refused([a, b], "reason", reason="")
    with pytest.raises(NotFound):
        registry.split_grid("410702001001U099", [a, b], "a", date(2026, 8, 1), "r", clock=clock)
    assert _unchanged(registry) == before


def test_lineage_across_split_merge_recode_and_redraw(registry, clock):
    """U001 is split (U001 + U004), U004 merges with U002 into U007, U007 is recoded U008, U008 redrawn."""
    registry.split_grid(U001, [_part(U001, "一", 300), _part("410702001001U004", "四", 120)], "a",
                        date(2026, 3, 1), "拆分", clock=clock)
    registry.merge_grids(["410702001001U004", U002], "410702001001U007", "七", 732, "某处", "a", date(2026, 6, 1),
                         "合并", clock=clock)
    registry.recode_grid("410702001001U007", "410702001001U008", "a", date(2026, 9, 1), reason="编号", clock=clock)
    registry.redraw_grid("410702001001U008", 480, "新边界", "a", date(2026, 10, 1), reason="划界", clock=clock)
    history = registry.grid_history("410702001001U004")
    # Ancestors and descendants, in date order; neither its sibling (the new U001) nor its co-source (U002).
    assert [(g.code, g.effective_from) for g in history] == [
        (U001, date(2026, 1, 1)), ("410702001001U004", date(2026, 3, 1)), ("410702001001U007", date(2026, 6, 1)),
        ("410702001001U008", date(2026, 9, 1)), ("410702001001U008", date(2026, 10, 1))]
    latest = registry.lineage("410702001001U008")
    assert sorted((g.code, g.effective_from) for g in latest.rows) == sorted([
        (U001, date(2026, 1, 1)), (U002, date(2026, 1, 1)), ("410702001001U004", date(2026, 3, 1)),
        ("410702001001U007", date(2026, 6, 1)), ("410702001001U008", date(2026, 9, 1)),
        ("410702001001U008", date(2026, 10, 1))])
    assert [f.kind for f in latest.changes] == ["grid_created", "grid_created", "grid_split", "grid_merged",
                                                "grid_recoded", "grid_redrawn"]
    # What each code meant on each day, through all four changes.
    assert registry.grid(U001, date(2026, 2, 1)).households == 420
    assert registry.grid(U001, date(2026, 3, 1)).households == 300
    assert registry.grid("410702001001U004", date(2026, 5, 31)).name == "四"
    assert registry.grid("410702001001U007", date(2026, 8, 31)).households == 732
    assert registry.grid("410702001001U008", date(2026, 9, 30)).households == 732
    assert registry.grid("410702001001U008", date(2026, 10, 1)).households == 480
    with pytest.raises(NotFound, match="not in force on 2026-09-01"):
        registry.grid("410702001001U007", date(2026, 9, 1))
    # Workers followed the grid through the merge and the recode.
    assert _current_workers(registry, "410702001001U008") == [("张海燕", "part_time")]


def test_cases_keep_the_grid_code_they_were_reported_in(registry, deployed, clock):
    case_id = deployed.cases.start("grid_matter", {"title": "井盖缺失", "grid_code": U001}, actor="王秀英",
                                   role="grid_worker", clock=clock)
    reported_on = clock.now().date()
    registry.split_grid(U001, [_part("410702001001U005", "东片", 210), _part("410702001001U006", "西片", 210)],
                        "a", date(2026, 12, 1), "拆分", clock=clock)
    case = deployed.queries.case(case_id)
    assert case.grid_code == U001 and case.data["grid_code"] == U001
    assert [t.grid_code for t in case.open_tasks] == [U001]
    assert registry.grid(case.grid_code, reported_on).name == "东风社区第一网格"


def test_cli_grid_changes(tmp_path):
    from tests.test_cli import gridflow

    gridflow(tmp_path, "registry", "sample")
    merged = gridflow(tmp_path, "registry", "merge", U001, U002, "--into", U001, "--boundary", "东至劳动街，西至平原路",
                      "--date", "2026-12-01", "--reason", "户数偏少").stdout
    assert "410702001001U001, 410702001001U002 → 410702001001U001 东风社区第一网格 (744 households)" in merged
    assert "moved 叶春花 (full_time) 410702001001U002 → 410702001001U001" in merged and "above the 300–500" in merged
    split = gridflow(tmp_path, "registry", "split", "410702001001U003", "--part", "410702001001U004:东片:200:东至劳动街",
                     "--part", "410702001001U005:西片:213:西至文化街", "--assign", "薛霞=410702001001U004",
                     "--date", "2026-12-01", "--reason", "拆分").stdout
    assert "unassigned 郑浩然 (part_time)" in split and "410702001001U005: no full-time worker" in split
    assert "→ 410702001001U006" in gridflow(tmp_path, "registry", "recode", "410702001001U004", "410702001001U006",
                                            "--date", "2026-12-05", "--reason", "编号调整").stdout
    assert "310 households" in gridflow(tmp_path, "registry", "redraw", "410702001001U006", "--households", "310",
                                        "--boundary", "东至劳动街", "--date", "2026-12-10", "--reason", "划界").stdout
    history = gridflow(tmp_path, "registry", "history", "410702001001U006").stdout
    for text in ("410702001001U003 → 410702001001U004 + 410702001001U005", "410702001001U004 → 410702001001U006",
                 "200 → 310 households", "2026-12-10"):
        assert text in history
    assert "410702001001U005  " not in history.split("filings:")[0]   # a sibling is not in the line
    filings = gridflow(tmp_path, "registry", "filings", "--grid", U002).stdout
    assert "grid_created" in filings and "410702001001U001 + 410702001001U002 → 410702001001U001" in filings
    assert "410702001001U003" not in filings
    check = gridflow(tmp_path, "registry", "check", "--date", "2026-12-11").stdout
    assert "410702001001U005" in check
    for args, message in [
        (["merge", U001, "410702001002U001", "--into", U001, "--boundary", "x", "--reason", "r"],
         "cannot cross communities"),
        (["split", "410702001001U005", "--part", "x:y", "--reason", "r"], "write code:name:households:boundary"),
        (["split", "410702001001U005", "--part", "410702001001U007:a:1:b", "--part", "410702001001U008:c:2:d",
          "--assign", "nobody", "--reason", "r"], "WORKER=PART_CODE"),
        (["merge", U001, U002, "--into", U001, "--boundary", "x"], "Missing option '--reason'"),
        (["history", "410702009001U001"], "no grid 410702009001U001"),
        (["recode", U001, "410702001001X001", "--reason", "r"], "unknown grid type"),
    ]:
        result = gridflow(tmp_path, "registry", *args, check=False)
        assert result.returncode in (1, 2) and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and "internal" not in result.stderr


def test_two_concurrent_merges_of_one_grid_leave_one(registry, clock):
    import threading

    from engine.errors import Conflict

    outcomes, start = [], threading.Barrier(2)

    def merge(into):
        start.wait()
        try:
            registry.merge_grids([U001, U002], into, "合并", 1032, "某处", "a", date(2026, 6, 1), "合并", clock=clock)
            outcomes.append("merged")
        except (NotFound, Conflict) as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=merge, args=(code,)) for code in ("410702001001U007", "410702001001U008")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["NotFound", "merged"], ["Conflict", "merged"])
    assert [f.kind for f in registry.filings()].count("grid_merged") == 1
    assert len(registry.grid_history(U001)) == 2   # the source and the one merged grid
