"""What a report and a dispatch must name that the registry holds: a grid in force on the day of the report
(条例 §7–§9: a matter belongs to a drawn grid) and registered units (条例 §16: a matter goes to a linkage
department or service unit that exists, never to nobody).

Reads the registry's tables in the command's own session, so the check and the command see one snapshot.
Imports the store and the registry's date helpers only."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from rules.grid_codes import GridCode, InvalidGridCode

from engine.errors import InvalidCommand
from engine.registry.common import _beijing_date, _in_force
from engine.store.models import Grid, UnitRow

MAX_ASSISTING_UNITS = 5


class RegistryChecks:
    """The intake and dispatch checks against the registry."""

    @staticmethod
    def check_grid(session, grid_code, now: datetime) -> None:
        if grid_code is None or not str(grid_code).strip():
            raise InvalidCommand("a report names the grid it was found in (grid_code)",
                                 zh="上报事项须注明所在网格（grid_code）")
        code = str(grid_code)
        try:
            GridCode.parse(code)
        except (InvalidGridCode, ValueError) as exc:
            raise InvalidCommand(f"grid_code {code!r} is not a grid code: {exc}",
                                 zh=f"网格编码 {code!r} 格式不正确：{exc}") from None
        on_day = _beijing_date(now)
        if session.scalar(sa.select(Grid.id).where(_in_force(Grid, on_day), Grid.code == code).limit(1)):
            return
        if session.scalar(sa.select(sa.func.count()).select_from(Grid)) == 0:
            raise InvalidCommand("the grid registry is empty, so no report can name a grid in force: import the "
                                 "grids first (`gridflow registry import grids FILE`, or `gridflow registry sample` "
                                 "for the sample county)",
                                 zh="网格登记库为空，无法核对上报网格：请先导入网格（`gridflow registry import grids 文件`，"
                                    "或用 `gridflow registry sample` 载入示例区县）")
        rows = session.execute(sa.select(Grid.effective_from, Grid.effective_to).where(Grid.code == code)
                               .order_by(Grid.effective_from)).all()
        if not rows:
            raise InvalidCommand(f"grid {code} is not in the registry (条例第七条: grids are drawn and filed by "
                                 "the county)", zh=f"网格 {code} 不在网格登记库中（条例第七条）")
        first, last_end = rows[0][0], rows[-1][1]
        if on_day < first:
            raise InvalidCommand(f"grid {code} is in force from {first}, not yet on {on_day}",
                                 zh=f"网格 {code} 自 {first} 起生效，{on_day} 尚未生效")
        raise InvalidCommand(f"grid {code} was retired on {last_end}; a report on {on_day} names the grid in force "
                             "now (see `gridflow registry history CODE`)",
                             zh=f"网格 {code} 已于 {last_end} 撤销；{on_day} 的上报须注明现行网格"
                                "（可用 `gridflow registry history 编码` 查询）")

    @staticmethod
    def check_units(session, lead, assisting, limit: int = MAX_ASSISTING_UNITS) -> None:
        """Units a dispatch names explicitly: registered, at most `limit` assisting ones, none twice."""
        named = ([str(lead)] if lead else []) + [str(u) for u in (assisting or [])]
        if not named:
            return
        if assisting is not None and not isinstance(assisting, list):
            raise InvalidCommand("assisting_units is a list of unit codes", zh="协办单位（assisting_units）须为单位编码列表")
        if len(assisting or []) > limit:
            raise InvalidCommand(f"at most {limit} assisting units (协办单位) may be named, not {len(assisting)}",
                                 zh=f"协办单位最多 {limit} 个，本次为 {len(assisting)} 个")
        if len(set(named)) != len(named):
            raise InvalidCommand("a unit is named twice among the lead and assisting units",
                                 zh="主办单位与协办单位中有重复的单位")
        rows = {row.code: row for row in session.scalars(sa.select(UnitRow).where(UnitRow.code.in_(named)))}
        if not rows and session.scalar(sa.select(sa.func.count()).select_from(UnitRow)) == 0:
            raise InvalidCommand("the unit registry is empty: load it with `gridflow registry sample` before "
                                 "dispatching",
                                 zh="单位登记库为空：请先执行 `gridflow registry sample` 载入单位后再派遣")
        unknown = [code for code in named if code not in rows]
        if unknown:
            raise InvalidCommand(f"not registered units (条例第十六条): {', '.join(unknown)}; the registered "
                                 "ones are listed at GET /registry/units",
                                 zh=f"以下单位未在单位登记库中（条例第十六条）：{', '.join(unknown)}；"
                                    "已登记单位见 GET /registry/units")
