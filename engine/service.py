"""The engine as one object: what the CLI and the HTTP API call."""
from __future__ import annotations

from .calendars import CalendarStore
from .cases import CaseService
from .db import database_url, make_engine, make_sessionmaker, make_view_sessionmaker
from .definitions import DefinitionStore
from .matter_lists import MatterListStore
from .queries import CaseQueries
from .registry import RegistryStore
from .schema import upgrade
from .standing import DeadlineBoard
from .timers import TimerService


class Engine:
    def __init__(self, url: str | None = None, *, migrate: bool = True, **engine_kwargs):
        self.url = database_url(url)
        self.db = make_engine(self.url, **engine_kwargs)
        if migrate:
            upgrade(self.db)
        self.sessions = make_sessionmaker(self.db, writer=True)
        self.readers = make_sessionmaker(self.db, writer=False)
        self.definitions = DefinitionStore(self.sessions, self.readers)
        self.calendars = CalendarStore(self.sessions, self.readers)
        if migrate:
            self.calendars.ensure_seeded()
        self.matter_lists = MatterListStore(self.sessions, self.readers)
        self.cases = CaseService(self.sessions, self.definitions, self.calendars, self.matter_lists)
        # Single-statement reads (views, scope checks) run outside a transaction on PostgreSQL.
        self.views = make_view_sessionmaker(self.db)
        self.queries = CaseQueries(self.views, self.definitions)
        self.timers = TimerService(self.sessions, self.readers, self.cases)
        self.deadlines = DeadlineBoard(self.readers, self.calendars)
        self.registry = RegistryStore(self.sessions, self.readers)
        # (matter lists, issue 4)
        # (API, issue 5)
        from .access_log import AccessLog
        from .acting import ActingCases
        from .api_keys import ApiKeyStore
        from .idempotency import IdempotencyStore
        self.api_keys = ApiKeyStore(self.sessions, self.readers)
        self.idempotency = IdempotencyStore(self.sessions, self.readers)
        self.access_log = AccessLog(self.sessions, self.readers)
        self.acting = ActingCases(self.cases, self.views)  # commands on behalf of a principal, scope checked
        # (outbox, issue 5)
        from .outbox import Outbox
        from .webhooks import Webhooks
        self.outbox = Outbox(self.sessions, self.readers, self.deadlines)
        self.webhooks = Webhooks(self.sessions, self.readers)
        # (audit, issue 6)
        from .audit import AuditService
        self.audit = AuditService(self.sessions, self.readers, self.definitions, self.calendars, self.url)
        if migrate:  # every rules-table version the engine runs with is kept, for replays after an upgrade
            self.audit.rule_tables.record_shipped()

    def close(self) -> None:
        self.db.dispose()
