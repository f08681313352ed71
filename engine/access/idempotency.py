"""Idempotency keys: a retried request gets the first outcome back and the command acts exactly once.

A key is recorded by the transaction that commits the request's writes, in that same transaction: the
adapter announces the request's key (`pending`) before the handler runs, and the first writing
transaction of the request adds the key's record before it commits. So a request that never committed
(refused, failed, cut off by a crash) leaves no record and its retry runs it; one that committed has its
record, and its retry is answered from it instead of acting again. The response itself is stored once it
is made (`finish`); when the process died between the commit and that moment, the record still says which
case the command wrote (`Replay.case_id`) and the adapter answers from the case as it now is.

Two concurrent requests with one key both run; the second to commit finds the key taken and is rolled
back whole (`KeyInFlight`), so the command still acts once.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict, EngineError
from engine.store.db import utcnow
from engine.store.models import Case, IdempotencyRecord, PersonalDataRead

MAX_KEY_LENGTH = 200
COMMITTED = "committed"   # the request's writes committed; its response is not stored (yet)
DONE = "done"             # the response is stored
# Rows a transaction may write without being the request's command: reading personal data is logged.
_NOT_COMMANDS = (PersonalDataRead,)


class KeyReused(EngineError):
    """The key was used before for a different request."""

    code = "idempotency_key_reused"


class InvalidKey(EngineError):
    code = "invalid_idempotency_key"


class KeyInFlight(Conflict):
    """Another request with the same key committed first; this one was rolled back and changed nothing."""

    zh = "使用同一幂等键的另一请求正在处理或刚刚完成，本次请求未生效，请稍后用同一键重试"


@dataclass(frozen=True)
class Replay:
    status_code: int | None     # None: the command committed but its response was never stored
    body: str | None
    case_id: int | None = None  # the case the committed command wrote, when it wrote one
    committed_at: datetime | None = None


@dataclass
class Pending:
    """The key of the request being handled, until its first writing transaction records it."""

    principal: str
    key: str
    fingerprint: str
    created_at: datetime
    recorded: bool = False
    case_id: int | None = None
    _wrote: set = field(default_factory=set)   # ids of sessions whose transaction wrote command rows


_PENDING: contextvars.ContextVar[Pending | None] = contextvars.ContextVar("gridflow_idempotency", default=None)


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


def _after_flush(session, _context) -> None:
    pending = _PENDING.get()
    if pending is None or pending.recorded:
        return
    written = [obj for obj in (*session.new, *session.dirty, *session.deleted) if not isinstance(obj, _NOT_COMMANDS)]
    if not written:
        return
    pending._wrote.add(id(session))
    if pending.case_id is None:
        pending.case_id = next((obj.id for obj in written if isinstance(obj, Case) and obj.id is not None), None)


def _before_commit(session) -> None:
    pending = _PENDING.get()
    if pending is None or pending.recorded:
        return
    session.flush()   # what is still unflushed decides whether this transaction writes
    if id(session) not in pending._wrote:
        return
    session.add(IdempotencyRecord(principal=pending.principal, key=pending.key, fingerprint=pending.fingerprint,
                                  state=COMMITTED, response=json.dumps({"case_id": pending.case_id}),
                                  created_at=pending.created_at))
    try:
        session.flush()
    except IntegrityError:
        raise KeyInFlight(f"a request with Idempotency-Key {pending.key!r} is still being processed or has just "
                          "finished; nothing of this one was applied — send it again with the same key; retry shortly") from None
    pending.recorded = True


def _after_rollback(session, _previous) -> None:
    pending = _PENDING.get()
    if pending is not None:
        pending._wrote.discard(id(session))


class IdempotencyStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers
        # Every writing transaction of the engine goes through these sessions, commands first of all.
        for name, listener in (("after_flush", _after_flush), ("before_commit", _before_commit),
                               ("after_soft_rollback", _after_rollback)):
            if not event.contains(sessions, name, listener):
                event.listen(sessions, name, listener)

    def lookup(self, principal: str, key: str, fingerprint_: str) -> Replay | None:
        """None: no request with this key committed anything yet; run it. A `Replay`: it ran before."""
        check_key(key)
        with self._readers() as session:
            row = session.scalar(sa.select(IdempotencyRecord).where(IdempotencyRecord.principal == principal,
                                                                    IdempotencyRecord.key == key))
        if row is None:
            return None
        if row.fingerprint != fingerprint_:
            raise KeyReused(f"Idempotency-Key {key!r} was already used for a different request; "
                            "use a new key for a new request")
        return _replay(row)

    @contextmanager
    def pending(self, principal: str, key: str, fingerprint_: str, clock: Clock = SYSTEM_CLOCK):
        """The request with this key runs inside: its first writing transaction records the key."""
        check_key(key)
        claim = Pending(principal, key, fingerprint_, clock.now())
        token = _PENDING.set(claim)
        try:
            yield claim
        finally:
            _PENDING.reset(token)

    def claim(self, principal: str, key: str, fingerprint_: str, clock: Clock = SYSTEM_CLOCK) -> Replay | None:
        """What a request with this key should do: None, run (nothing with the key committed yet); a `Replay`,
        answer from it. Nothing is claimed: the key is recorded by the transaction that commits the command."""
        return self.lookup(principal, key, fingerprint_)

    def finish(self, principal: str, key: str, status_code: int, body: str, clock: Clock = SYSTEM_CLOCK, *,
               fingerprint_: str = "", created_at: datetime | None = None) -> Replay | None:
        """Store the response of a finished request: on the record its command's commit made, or, for a request
        that wrote nothing, in a record of its own (a refusal is answered the same to a retry). Returns the
        replay to answer with instead when another request with the key committed first."""
        now = clock.now()
        with self._sessions() as session, session.begin():
            updated = session.execute(sa.update(IdempotencyRecord)
                                      .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key,
                                             IdempotencyRecord.state == COMMITTED)
                                      .values(state=DONE, status_code=status_code, response=body,
                                              finished_at=now)).rowcount
        if updated:
            return None
        try:
            with self._sessions() as session, session.begin():
                session.add(IdempotencyRecord(principal=principal, key=key, fingerprint=fingerprint_, state=DONE,
                                              status_code=status_code, response=body,
                                              created_at=created_at or now, finished_at=now))
            return None
        except IntegrityError:
            with self._readers() as session:
                row = session.scalar(sa.select(IdempotencyRecord).where(IdempotencyRecord.principal == principal,
                                                                        IdempotencyRecord.key == key))
            return _replay(row) if row is not None else None

    def finish_pending(self, claim: Pending, status_code: int, body: str, clock: Clock = SYSTEM_CLOCK) -> Replay | None:
        """`finish` for the request that ran under `claim`."""
        return self.finish(claim.principal, claim.key, status_code, body, clock, fingerprint_=claim.fingerprint,
                           created_at=claim.created_at)

    def answered(self, principal: str, key: str, status_code: int, body: str, clock: Clock = SYSTEM_CLOCK) -> None:
        """The response rebuilt for a committed request whose own response was lost, kept for later retries."""
        with self._sessions() as session, session.begin():
            session.execute(sa.update(IdempotencyRecord)
                            .where(IdempotencyRecord.principal == principal, IdempotencyRecord.key == key,
                                   IdempotencyRecord.state == COMMITTED)
                            .values(state=DONE, status_code=status_code, response=body, finished_at=clock.now()))

    def purge(self, older_than: timedelta, clock: Clock = SYSTEM_CLOCK) -> int:
        """Drop records past their retention; returns how many."""
        with self._sessions() as session, session.begin():
            return session.execute(sa.delete(IdempotencyRecord).where(
                IdempotencyRecord.created_at < clock.now() - older_than)).rowcount


def _replay(row: IdempotencyRecord) -> Replay:
    if row.state == DONE:
        return Replay(row.status_code, row.response, committed_at=row.created_at)
    written = json.loads(row.response or "{}")
    return Replay(None, None, case_id=written.get("case_id"), committed_at=row.created_at or utcnow())
