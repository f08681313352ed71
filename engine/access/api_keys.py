"""API keys for the platform's system account: issued once, stored as a hash, revocable."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from engine.access.scopes import PLATFORM, Principal
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import InvalidCommand, NotFound
from engine.store.models import ApiKey

PREFIX = "gfk_"


@dataclass(frozen=True)
class ApiKeyView:
    id: int
    name: str
    prefix: str
    user: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


def is_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(row.id, row.name, row.prefix, row.user, row.role, row.created_at, row.created_by,
                      row.revoked_at)


class ApiKeyStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers

    def create(self, name: str, *, user: str, by: str, clock: Clock = SYSTEM_CLOCK) -> tuple[str, ApiKeyView]:
        """A new key for the platform account `user`; returns the key itself (shown once) and its record."""
        if not name.strip() or not user.strip():
            raise InvalidCommand("an API key needs a name and the system account's user name")
        Principal(user, PLATFORM)  # the same checks a token gets
        key = PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(name=name.strip(), prefix=key[:12], key_hash=_digest(key), user=user.strip(), role=PLATFORM,
                     created_at=clock.now(), created_by=by)
        with self._sessions() as session, session.begin():
            session.add(row)
        return key, _view(row)

    def list(self) -> list[ApiKeyView]:
        with self._readers() as session:
            return [_view(r) for r in session.scalars(sa.select(ApiKey).order_by(ApiKey.id))]

    def revoke(self, key_id: int, *, clock: Clock = SYSTEM_CLOCK) -> ApiKeyView:
        with self._sessions() as session, session.begin():
            row = session.get(ApiKey, key_id)
            if row is None:
                raise NotFound(f"no API key {key_id}")
            if row.revoked_at is None:
                row.revoked_at = clock.now()
            return _view(row)

    def revocations(self) -> tuple[int, datetime | None]:
        """How many keys were revoked and the latest revocation: a key cache compares this on every request,
        so a revocation is in force on the next request on every worker."""
        with self._readers() as session:
            count, latest = session.execute(sa.select(sa.func.count(), sa.func.max(ApiKey.revoked_at))
                                            .where(ApiKey.revoked_at.is_not(None))).one()
        return int(count), latest

    def principal(self, key: str) -> Principal | None:
        """The principal a presented key stands for, or None for an unknown or revoked key."""
        with self._readers() as session:
            row = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == _digest(key),
                                                         ApiKey.revoked_at.is_(None)))
            return Principal(row.user, row.role) if row is not None else None
