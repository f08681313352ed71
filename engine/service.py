"""`Engine`: the one object adapters use. It composes the capability packages and is the only module that
imports them all; nothing inside them imports it back."""
from __future__ import annotations

from engine.access.access_log import AccessLog
from engine.access.accounts import AccountStore
from engine.access.api_keys import ApiKeyStore
from engine.access.idempotency import IdempotencyStore
from engine.audit.trail import AuditService
from engine.cases.acting import ActingCases
from engine.cases.commands import CaseService
from engine.cases.paths import CasePaths
from engine.cases.queries import CaseQueries
from engine.deadlines.calendars import CalendarStore
from engine.deadlines.standing import DeadlineBoard
from engine.deadlines.timers import TimerService
from engine.definitions.store import DefinitionStore
from engine.delivery.outbox import Outbox
from engine.delivery.webhooks import Webhooks
from engine.migration.service import MigrationService
from engine.registry.matter_lists import MatterListStore
from engine.registry.store import RegistryStore
from engine.statistics.service import Statistics
from engine.store.db import database_url, make_engine, make_sessionmaker, make_view_sessionmaker
from engine.store.schema import upgrade


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
        self.api_keys = ApiKeyStore(self.sessions, self.readers)
        self.idempotency = IdempotencyStore(self.sessions, self.readers)
        self.access_log = AccessLog(self.sessions, self.readers)
        self.acting = ActingCases(self.cases, self.views)  # commands on behalf of a principal, scope checked
        self.outbox = Outbox(self.sessions, self.readers, self.deadlines)
        self.webhooks = Webhooks(self.sessions, self.readers)
        self.audit = AuditService(self.sessions, self.readers, self.definitions, self.calendars, self.url,
                                  engine_factory=type(self))
        # (statistics)
        self.statistics = Statistics(self.readers, self.queries)
        self.cases.projections.append(self.statistics.record)

        # (console accounts)
        self.accounts = AccountStore(self.sessions, self.readers)  # people who sign in to the console
        self.paths = CasePaths(self.views, self.definitions)  # a case's path on its diagram, task deadlines

        # (instance migration)
        self.migrations = MigrationService(self.sessions, self.readers, self.cases, self.definitions,
                                           workers=2 if self.db.dialect.name == "postgresql" else 1)

        if migrate:  # every rules-table version the engine runs with is kept, for replays after an upgrade
            self.audit.rule_tables.record_shipped()

    def close(self) -> None:
        self.db.dispose()
