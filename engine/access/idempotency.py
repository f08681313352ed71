"""Idempotency keys: a retried request gets the first outcome back and the command acts once.

The record is claimed before the command runs and holds its response afterwards, in the database so that
every web worker sees it. A claim whose request never finished (the worker died mid-way) is not run
again: whether its command committed is unknown, so the caller is told to look before acting anew.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict, EngineError
from engine.store.models import IdempotencyRecord

MAX_KEY_LENGTH = 200
# How long a request may take before its unfinished claim counts as abandoned.
RUNNING_LEASE = timedelta(minutes=2)


class KeyReused(EngineError):
    """The key was used before for a different request."""

    code = "idempotency_key_reused"


class InvalidKey(EngineError):
    code = "invalid_idempotency_key"


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidKey(f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    return key


class IdempotencyStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers

    def claim(self, principal: str, key: str, fingerprint_: str, clock: Clock = SYSTEM_CLOCK) -> Replay | None:
        """None: the request is the first with this key and should run now. A `Replay`: it ran before;
        answer with what it answered then."""
        check_key(key)
        try:
            with self._sessions() as session, session.begin():
                session.add(IdempotencyRecord(principal=principal, key=key, fingerprint=fingerprint_,
                                              state="running", created_at=clock.now()))
            return None
        except IntegrityError:
            pass
        with self._readers() as session:
            row = session.scalar(sa.select(IdempotencyRecord).where(IdempotencyRecord.principal == principal,
                                                                    IdempotencyRecord.key == key))
        if row is None:  # released between our insert and this read: the other attempt failed; try again
            return self.claim(principal, key, fingerprint_, clock)
        if row.fingerprint != fingerprint_:
            raise KeyReused(f"Idempotency-Key {key!r} was already used for a different request; "
                            "use a new key for a new request")
        if row.state == "done":
            return Replay(row.status_code, row.response)
        if clock.now() - row.created_at < RUNNING_LEASE:
            raise Conflict(f"a request with Idempotency-Key {key!r} is still being processed; retry shortly")
        raise Conflict(f"a request with Idempotency-Key {key!r} started at {row.created_at.isoformat()} and "
                       "never finished; whether it took effect is unknown — check before sending it with a new key")

    def finish(self, principal: str, key: str, status_code: int, body: str, clock: Clock = SYSTEM_CLOCK) -> None:
        with self._sessions() as session, session.begin():
            session.execute(sa.update(IdempotencyRecord)
                            .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key)
                            .values(state="done", status_code=status_code, response=body,
                                    finished_at=clock.now()))

    def release(self, principal: str, key: str) -> None:
        """The request failed in a way a retry may cure (a conflict, a fault): forget the claim."""
        with self._sessions() as session, session.begin():
            session.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.principal == principal,
                                                               IdempotencyRecord.key == key,
                                                               IdempotencyRecord.state == "running"))

    def purge(self, older_than: timedelta, clock: Clock = SYSTEM_CLOCK) -> int:
        """Drop finished records past their retention; returns how many."""
        with self._sessions() as session, session.begin():
            return session.execute(sa.delete(IdempotencyRecord).where(
                IdempotencyRecord.state == "done",
                IdempotencyRecord.created_at < clock.now() - older_than)).rowcount
