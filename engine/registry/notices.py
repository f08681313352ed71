"""The §11 public notice of a grid (its workers, duties, supervision phone) as data, CSV and a printable page."""
from __future__ import annotations

from __future__ import annotations

import html
from typing import Iterable


from rules.grid_codes import (
    GRID_TYPES,
)

from engine.store.models import Division
from engine.registry.common import DUTIES, EMPLOYMENT, NOTICE_COLUMNS, _current_grid, _current_workers
from engine.registry.spreadsheets import csv_bytes


class PublicNotices:
    """Public notices, mixed into `RegistryStore`."""

    def public_notice(self, grid_code: str) -> dict:
        """What is posted at the grid: its name, area, workers' names and phones, duties and a supervision
        phone. Built field by field from an allow-list: nothing else about a worker leaves the registry."""
        with self._readers() as session:
            grid = _current_grid(session, grid_code)
            workers = list(session.scalars(_current_workers(grid_code)))
            supervision = self._supervision_phone(session, grid.community_code)
        full_time_first = sorted(workers, key=lambda w: (w.employment != "full_time", w.effective_from, w.id))
        return {
            "grid_code": grid.code,
            "grid_name": grid.name,
            "grid_type": GRID_TYPES[grid.grid_type],
            "area": grid.boundary,
            "workers": [{"name": w.name, "role": EMPLOYMENT[w.employment], "phone": w.phone}
                        for w in full_time_first],
            "duties": DUTIES,
            "supervision_phone": supervision,
        }

    def public_notice_csv(self, codes: Iterable[str]) -> bytes:
        rows = []
        for code in codes:
            notice = self.public_notice(code)
            common = (notice["grid_code"], notice["grid_name"], notice["area"])
            tail = (notice["duties"], notice["supervision_phone"])
            if not notice["workers"]:
                rows.append([*common, "", "", "", *tail])
            for worker in notice["workers"]:
                rows.append([*common, worker["name"], worker["role"], worker["phone"], *tail])
        return csv_bytes(NOTICE_COLUMNS, rows)

    def public_notice_html(self, grid_code: str) -> str:
        """A page to print and post (A4); self-contained, since it is often printed from an offline office PC."""
        notice = self.public_notice(grid_code)
        e = html.escape
        workers = "\n".join(f"      <tr><td>{e(w['name'])}</td><td>{e(w['role'])}</td><td>{e(w['phone'])}</td></tr>"
                            for w in notice["workers"]) or '      <tr><td colspan="3">（待配备）</td></tr>'
        return _NOTICE_PAGE.format(
            title=e(notice["grid_name"]), code=e(notice["grid_code"]), type=e(notice["grid_type"]),
            area=e(notice["area"]), workers=workers, duties=e(notice["duties"]),
            supervision=e(notice["supervision_phone"]))

    def _supervision_phone(self, session, division_code: str | None) -> str:
        seen = set()
        while division_code and division_code not in seen:
            seen.add(division_code)
            division = session.get(Division, division_code)
            if division is None:
                break
            if division.supervision_phone:
                return division.supervision_phone
            division_code = division.parent_code
        return self.default_supervision_phone


_NOTICE_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title} 网格公示</title>
<style>
  @page {{ size: A4; margin: 18mm; }}
  body {{ font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimHei", sans-serif;
         color: #000; max-width: 180mm; margin: 0 auto; line-height: 1.6; }}
  h1 {{ text-align: center; font-size: 26pt; margin: 0 0 4mm; letter-spacing: 0.1em; }}
  .code {{ text-align: center; font-family: monospace; font-size: 11pt; margin-bottom: 6mm; }}
  h2 {{ font-size: 14pt; border-left: 2mm solid #b00; padding-left: 3mm; margin: 6mm 0 2mm; }}
  table {{ width: 100%; border-collapse: collapse; font-size: 13pt; }}
  th, td {{ border: 1px solid #000; padding: 2mm 3mm; text-align: left; }}
  th {{ background: #eee; }}
  .supervision {{ margin-top: 8mm; font-size: 15pt; font-weight: bold; text-align: center;
                  border: 2px solid #b00; padding: 3mm; }}
  @media print {{ th {{ -webkit-print-color-adjust: exact; print-color-adjust: exact; }} }}
</style>
</head>
<body>
  <h1>{title}</h1>
  <div class="code">网格编码 {code} · {type}</div>
  <h2>网格范围</h2>
  <p>{area}</p>
  <h2>网格员</h2>
  <table>
    <thead><tr><th>姓名</th><th>类别</th><th>联系电话</th></tr></thead>
    <tbody>
{workers}
    </tbody>
  </table>
  <h2>工作职责</h2>
  <p>{duties}</p>
  <div class="supervision">监督电话：{supervision}</div>
</body>
</html>
"""
