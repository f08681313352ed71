"""Accounts for people who sign in to the console. Each account is one `Principal` (role and scope), the
same the API checks, so the console can never show or do more than the API would for that person.

Passwords are hashed with argon2 (argon2-cffi, its default parameters). Repeated failures back off: after
`FREE_ATTEMPTS` wrong passwords in a row the account is locked for a minute, doubling with every further
failure up to `MAX_LOCK`; a good sign-in clears the count. Every sign-in, failure, lock-out and sign-out
is written to the console's access log (`sign_in_events`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from engine.access.scopes import Principal, principal_problems
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict, EngineError, InvalidCommand, NotFound
from engine.store.models import Account, SignInEvent

MIN_PASSWORD = 10
MAX_PASSWORD = 200
FREE_ATTEMPTS = 5
FIRST_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(hours=1)
_HASHER = PasswordHasher()
# Verified when the name is unknown, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not-a-password-of-anyone")


class SignInRefused(EngineError):
    """Wrong name or password, a disabled account, or one locked after repeated failures. The message
    never says which of name and password was wrong."""

    code = "sign_in_refused"

    def __init__(self, message: str, *, locked_until: datetime | None = None):
        super().__init__(message)
        self.locked_until = locked_until


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    role: str
    grid_code: str | None
    unit: str | None
    level: str | None
    area_code: str | None
    created_at: datetime
    created_by: str
    password_set_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None
    failed_attempts: int
    last_sign_in_at: datetime | None
    session_version: int

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, grid_code=self.grid_code, unit=self.unit, level=self.level,
                         area_code=self.area_code)


@dataclass(frozen=True)
class SignInRecord:
    id: int
    user: str
    event: str
    address: str | None
    detail: str
    at: datetime


def _view(row: Account) -> AccountView:
    return AccountView(row.id, row.name, row.role, row.grid_code, row.unit, row.level, row.area_code,
                       row.created_at, row.created_by, row.password_set_at, row.disabled_at, row.locked_until,
                       row.failed_attempts, row.last_sign_in_at, row.session_version)


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidCommand(f"a password has at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidCommand(f"a password has at most {MAX_PASSWORD} characters")
    if password.strip() != password or not password.strip():
        raise InvalidCommand("a password does not begin or end with spaces")


def lock_for(failures: int) -> timedelta | None:
    """How long the account stays locked after `failures` wrong passwords in a row."""
    if failures < FREE_ATTEMPTS:
        return None
    return min(FIRST_LOCK * (2 ** (failures - FREE_ATTEMPTS)), MAX_LOCK)


class AccountStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers

    # -- administration ------------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, *, grid_code: str | None = None, unit: str | None = None,
            level: str | None = None, area_code: str | None = None, by: str,
            clock: Clock = SYSTEM_CLOCK) -> AccountView:
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise InvalidCommand("an account needs a name of 1 to 200 characters")
        fields = dict(user=name, role=role, grid_code=grid_code or None, unit=unit or None, level=level or None,
                      area_code=area_code or None)
        problems = principal_problems(_Fields(**fields))
        if problems:
            raise InvalidCommand("; ".join(problems))
        check_password(password)
        now = clock.now()
        row = Account(name=name, role=role, grid_code=fields["grid_code"], unit=fields["unit"],
                      level=fields["level"], area_code=fields["area_code"], password_hash=_HASHER.hash(password),
                      session_version=1, failed_attempts=0, created_at=now, created_by=by, password_set_at=now)
        with self._sessions() as session, session.begin():
            if session.scalar(sa.select(Account.id).where(Account.name == name)) is not None:
                raise Conflict(f"an account named {name!r} exists already")
            session.add(row)
            session.flush()
            return _view(row)

    def list(self) -> list[AccountView]:
        with self._readers() as session:
            return [_view(r) for r in session.scalars(sa.select(Account).order_by(Account.name))]

    def get(self, name: str) -> AccountView:
        with self._readers() as session:
            row = session.scalar(sa.select(Account).where(Account.name == name))
            if row is None:
                raise NotFound(f"no account {name!r}")
            return _view(row)

    def disable(self, name: str, *, by: str, clock: Clock = SYSTEM_CLOCK) -> AccountView:
        """The account can no longer sign in, and its open sessions end at their next request."""
        with self._sessions() as session, session.begin():
            row = self._row(session, name)
            if row.disabled_at is None:
                row.disabled_at = clock.now()
                row.session_version += 1
                session.add(SignInEvent(user=row.name, event="disabled", detail=f"by {by}"[:200],
                                        at=clock.now()))
            return _view(row)

    def enable(self, name: str, *, by: str, clock: Clock = SYSTEM_CLOCK) -> AccountView:
        with self._sessions() as session, session.begin():
            row = self._row(session, name)
            if row.disabled_at is not None:
                row.disabled_at = None
                row.failed_attempts, row.locked_until = 0, None
                session.add(SignInEvent(user=row.name, event="enabled", detail=f"by {by}"[:200], at=clock.now()))
            return _view(row)

    def reset_password(self, name: str, password: str, *, by: str, clock: Clock = SYSTEM_CLOCK) -> AccountView:
        """A new password set by an administrator: clears a lock-out and ends the account's sessions."""
        check_password(password)
        digest = _HASHER.hash(password)
        with self._sessions() as session, session.begin():
            row = self._row(session, name)
            row.password_hash = digest
            row.password_set_at = clock.now()
            row.failed_attempts, row.locked_until = 0, None
            row.session_version += 1
            session.add(SignInEvent(user=row.name, event="password_reset", detail=f"by {by}"[:200],
                                    at=clock.now()))
            return _view(row)

    @staticmethod
    def _row(session, name: str) -> Account:
        row = session.scalar(sa.select(Account).where(Account.name == name))
        if row is None:
            raise NotFound(f"no account {name!r}")
        return row

    # -- signing in and out --------------------------------------------------------------------------

    def sign_in(self, name: str, password: str, *, address: str | None = None,
                clock: Clock = SYSTEM_CLOCK) -> AccountView:
        """The account when the password is right and it is neither disabled nor locked; otherwise
        `SignInRefused`. The attempt is recorded either way."""
        name = (name or "").strip()[:200]
        password = password if isinstance(password, str) else ""
        now = clock.now()
        refusal = None
        with self._sessions() as session, session.begin():
            # Refusals are recorded (and a failure counted) in this transaction, then raised after it commits.
            row = session.scalar(sa.select(Account).where(Account.name == name).with_for_update()) if name else None
            if row is None:
                _verify(_DUMMY_HASH, password)
                session.add(SignInEvent(user=name or "-", event="failed", address=address, detail="unknown name",
                                        at=now))
                refusal = SignInRefused("wrong name or password")
            elif row.locked_until is not None and row.locked_until > now:
                session.add(SignInEvent(user=row.name, event="refused", address=address, detail="locked", at=now))
                refusal = SignInRefused("too many failed attempts: the account is locked for a while",
                                        locked_until=row.locked_until)
            elif not _verify(row.password_hash, password):
                row.failed_attempts += 1
                pause = lock_for(row.failed_attempts)
                if pause is not None:
                    row.locked_until = now + pause
                    session.add(SignInEvent(user=row.name, event="locked", address=address,
                                            detail=f"{row.failed_attempts} failures; {int(pause.total_seconds())} s",
                                            at=now))
                else:
                    session.add(SignInEvent(user=row.name, event="failed", address=address,
                                            detail=f"{row.failed_attempts} in a row", at=now))
                refusal = SignInRefused("wrong name or password", locked_until=row.locked_until)
            elif row.disabled_at is not None:
                session.add(SignInEvent(user=row.name, event="refused", address=address, detail="disabled", at=now))
                refusal = SignInRefused("this account is disabled; ask an administrator")
            else:
                if _HASHER.check_needs_rehash(row.password_hash):
                    row.password_hash = _HASHER.hash(password)
                row.failed_attempts, row.locked_until, row.last_sign_in_at = 0, None, now
                session.add(SignInEvent(user=row.name, event="signed_in", address=address, at=now))
                view = _view(row)
        if refusal is not None:
            raise refusal
        return view

    def sign_out(self, name: str, *, address: str | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        with self._sessions() as session, session.begin():
            session.add(SignInEvent(user=name[:200], event="signed_out", address=address, at=clock.now()))

    def current(self, name: str, session_version: int) -> AccountView | None:
        """The account behind a console session, or None when it was disabled, its password reset or it
        was removed since the session began."""
        with self._readers() as session:
            row = session.scalar(sa.select(Account).where(Account.name == name))
        if row is None or row.disabled_at is not None or row.session_version != session_version:
            return None
        return _view(row)

    def events(self, user: str | None = None, *, limit: int = 100) -> list[SignInRecord]:
        query = sa.select(SignInEvent).order_by(SignInEvent.id.desc()).limit(limit)
        if user is not None:
            query = query.where(SignInEvent.user == user)
        with self._readers() as session:
            return [SignInRecord(r.id, r.user, r.event, r.address, r.detail, r.at) for r in session.scalars(query)]


@dataclass(frozen=True)
class _Fields:
    user: str
    role: str
    grid_code: str | None
    unit: str | None
    level: str | None
    area_code: str | None


def _verify(digest: str, password: str) -> bool:
    try:
        return _HASHER.verify(digest, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
