"""The record of unmasked reads of personal data (条例 §18): who saw which fields of which case, when."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.access.scopes import Principal
from engine.clock import SYSTEM_CLOCK, Clock
from engine.store.models import PersonalDataRead


@dataclass(frozen=True)
class ReadRecord:
    id: int
    user: str
    role: str
    case_id: int
    fields: list
    purpose: str
    read_at: datetime


class AccessLog:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers

    def record(self, principal: Principal, reads: dict[int, list[str]], purpose: str,
               clock: Clock = SYSTEM_CLOCK) -> None:
        """`reads`: {case id: the personal fields shown unmasked}. Written before the data leaves, so a
        read that is not recorded is a read that did not happen."""
        reads = {case_id: fields for case_id, fields in reads.items() if fields}
        if not reads:
            return
        now = clock.now()
        with self._sessions() as session, session.begin():
            session.add_all([PersonalDataRead(user=principal.user, role=principal.role, case_id=case_id,
                                              fields=sorted(fields), purpose=purpose[:200], read_at=now)
                             for case_id, fields in reads.items()])

    def reads(self, case_id: int | None = None, *, limit: int = 100) -> list[ReadRecord]:
        query = sa.select(PersonalDataRead).order_by(PersonalDataRead.id.desc()).limit(limit)
        if case_id is not None:
            query = query.where(PersonalDataRead.case_id == case_id)
        with self._readers() as session:
            return [ReadRecord(r.id, r.user, r.role, r.case_id, list(r.fields), r.purpose, r.read_at)
                    for r in session.scalars(query)]
