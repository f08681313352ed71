"""Webhooks: subscriptions, routing outbox events to them, and delivering with retries.

Delivery is at least once: a delivery that reached the receiver but whose success could not be
recorded (a crash, a lost response) is sent again, with the same event id. Receivers deduplicate by the
`X-GridFlow-Event-Id` header. Each request is signed: `X-GridFlow-Signature: t=<unix seconds>,v1=<hex>`
where v1 = HMAC-SHA256(secret, f"{t}." + body).

How it runs: routing turns each new event into one delivery per subscription that wants it. A delivery
process claims due deliveries (row locks with SKIP LOCKED on PostgreSQL, the single writer lock on
SQLite) by writing a lease on them, commits, sends outside any transaction, and records each outcome.
Two delivery processes never hold one delivery at once; one that dies mid-send leaves a lease that runs
out, and the delivery is sent again. Per receiver and case, events go out in order: a delivery waits
while an earlier one of its case is pending for that receiver (failures are retried first); a delivery
that went dead no longer holds the later ones back.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
import urllib3
from sqlalchemy.orm import aliased

from rules.task_lifecycle import OPEN_STATES

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import InvalidCommand, NotFound
from engine.store.models import HumanTask, OutboxEvent, WebhookDelivery, WebhookSubscription
from engine.delivery.outbox import KINDS, TASK_WARNING

log = logging.getLogger("gridflow.webhooks")

PENDING = sa.literal_column("'pending'")  # a literal, so prepared plans can use the partial indexes
SIGNATURE_HEADER = "X-GridFlow-Signature"
EVENT_ID_HEADER = "X-GridFlow-Event-Id"
MIN_SECRET = 16


@dataclass(frozen=True)
class DeliverySettings:
    max_attempts: int = 12          # then the delivery is dead until `webhooks retry`
    backoff_base: float = 10.0      # seconds before the 2nd attempt; doubles each time
    backoff_cap: float = 3600.0     # never waits longer than this between attempts
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    batch: int = 20

    def __post_init__(self):
        if self.max_attempts < 1:
            raise InvalidCommand("max attempts must be at least 1")
        if not 0 < self.backoff_base <= self.backoff_cap:
            raise InvalidCommand("the backoff base must be positive and not above the cap")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise InvalidCommand("timeouts must be positive")
        if not 1 <= self.batch <= 500:
            raise InvalidCommand("the batch is 1 to 500 deliveries")

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the `attempts`-th failure: exponential up to the cap, with jitter so receivers
        coming back are not hit by every delivery at the same second."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempts - 1))
        return timedelta(seconds=random.uniform(delay / 2, delay))

    @property
    def lease(self) -> timedelta:
        # Long enough to send a whole batch to receivers that all time out.
        return timedelta(seconds=self.batch * (self.connect_timeout + self.read_timeout) + 30)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = 300) -> bool:
    """What a receiver written in Python does with a request: check the signature and its age."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def body_of(event: OutboxEvent, task_id: int | None) -> bytes:
    """The request body: the same bytes on every attempt, so a receiver's deduplication sees one event.
    `task_id`: the row id of the event's task (`task_of`)."""
    document = {"id": event.uid, "type": event.kind, "occurred_at": event.occurred_at.isoformat(), **event.payload}
    if event.task_spiff_id is not None:
        document["task"] = {"id": task_id, **document.get("task", {})}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def task_of(query):
    """Join an event query to its task's row id (None for events about the case alone)."""
    return query.outerjoin(HumanTask, sa.and_(HumanTask.case_id == OutboxEvent.case_id,
                                              HumanTask.spiff_task_id == OutboxEvent.task_spiff_id))


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    events: list[str] | None
    active: bool
    created_at: datetime
    created_by: str
    secret_hint: str
    pending: int = 0
    dead: int = 0
    delivered: int = 0
    last_error: str | None = None


@dataclass
class PumpResult:
    routed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed + self.dead

    def add(self, other: PumpResult) -> None:
        for name in ("routed", "delivered", "failed", "dead", "deferred"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors


@dataclass(frozen=True)
class WebhookStatus:
    unrouted: int
    pending: int
    due: int  # pending deliveries that may go out now (not backing off, not behind an earlier one)
    dead: int
    delivered: int
    oldest_pending_age: timedelta | None


@dataclass(frozen=True)
class _Job:
    delivery_id: int
    subscription_id: int
    attempts: int
    url: str
    secret: str
    event_uid: str
    kind: str
    body: bytes
    token: str


class Webhooks:
    def __init__(self, sessions, readers, settings: DeliverySettings | None = None):
        self._sessions = sessions
        self._readers = readers
        self.settings = settings or DeliverySettings()

    # -- subscriptions ------------------------------------------------------------------------------

    def subscribe(self, url: str, secret: str | None = None, events: list[str] | None = None, *, by: str,
                  clock: Clock = SYSTEM_CLOCK) -> tuple[int, str]:
        """Add a subscription; returns its id and its secret (generated when none is given). It receives
        the events recorded from now on."""
        _check_url(url)
        if secret is None:
            secret = secrets.token_urlsafe(32)
        if not MIN_SECRET <= len(secret) <= 200:
            raise InvalidCommand(f"the secret must be {MIN_SECRET} to 200 characters (omit it to have one made)")
        if events is not None:
            unknown = sorted(set(events) - set(KINDS))
            if unknown or not events:
                raise InvalidCommand(f"unknown event kinds {', '.join(unknown) or '(none given)'}; "
                                     f"known: {', '.join(KINDS)}")
            events = [k for k in KINDS if k in events]
        with self._sessions() as session, session.begin():
            last = session.scalar(sa.select(sa.func.max(OutboxEvent.id))) or 0
            row = WebhookSubscription(url=url, secret=secret, events=events, active=True, after_event_id=last,
                                      created_at=clock.now(), created_by=by)
            session.add(row)
            session.flush()
            return row.id, secret

    def remove(self, subscription_id: int) -> None:
        """Remove a subscription and its deliveries, sent or not."""
        with self._sessions() as session, session.begin():
            if session.get(WebhookSubscription, subscription_id) is None:
                raise NotFound(f"no webhook subscription {subscription_id}")
            session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
            session.execute(sa.delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id))

    def set_active(self, subscription_id: int, active: bool) -> None:
        """Pause a subscription (its events keep being routed to it and wait) or resume it."""
        with self._sessions() as session, session.begin():
            row = session.get(WebhookSubscription, subscription_id)
            if row is None:
                raise NotFound(f"no webhook subscription {subscription_id}")
            row.active = active

    def subscriptions(self) -> list[Subscription]:
        d = WebhookDelivery
        counts = (sa.select(d.subscription_id, d.state, sa.func.count()).group_by(d.subscription_id, d.state))
        with self._readers() as session:
            tally: dict[int, dict[str, int]] = {}
            for sub_id, state, n in session.execute(counts):
                tally.setdefault(sub_id, {})[state] = n
            rows = session.scalars(sa.select(WebhookSubscription).order_by(WebhookSubscription.id)).all()
            errors = {r.id: session.scalar(  # the latest error of each undelivered one, if any
                sa.select(d.last_error).where(d.subscription_id == r.id, d.state != "delivered",
                                              d.last_error.is_not(None))
                .order_by(d.last_attempt_at.desc()).limit(1)) for r in rows}
        return [Subscription(r.id, r.url, r.events, r.active, r.created_at, r.created_by,
                             r.secret[:4] + "…", tally.get(r.id, {}).get("pending", 0),
                             tally.get(r.id, {}).get("dead", 0), tally.get(r.id, {}).get("delivered", 0),
                             errors.get(r.id)) for r in rows]

    def deliveries(self, *, state: str | None = None, subscription_id: int | None = None,
                   limit: int = 100) -> list[tuple[WebhookDelivery, OutboxEvent]]:
        query = (sa.select(WebhookDelivery, OutboxEvent).join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                 .order_by(WebhookDelivery.id.desc()).limit(limit))
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        if subscription_id is not None:
            query = query.where(WebhookDelivery.subscription_id == subscription_id)
        with self._readers() as session:
            return [tuple(row) for row in session.execute(query)]

    def retry(self, *, subscription_id: int | None = None, delivery_id: int | None = None,
              clock: Clock = SYSTEM_CLOCK) -> int:
        """Revive dead deliveries (all, a subscription's, or one): they are tried again from now, with a
        fresh count of attempts. Returns how many."""
        query = sa.update(WebhookDelivery).where(WebhookDelivery.state == "dead")
        if subscription_id is not None:
            query = query.where(WebhookDelivery.subscription_id == subscription_id)
        if delivery_id is not None:
            query = query.where(WebhookDelivery.id == delivery_id)
        with self._sessions() as session, session.begin():
            result = session.execute(query.values(state="pending", attempts=0, next_attempt_at=clock.now(),
                                                  claimed_until=None, claim_token=None))
            return result.rowcount

    def prune(self, older_than: timedelta, clock: Clock = SYSTEM_CLOCK) -> tuple[int, int]:
        """Delete deliveries delivered before `older_than` ago, then events routed before then that
        have no delivery left. Pending and dead deliveries stay, and so do warnings of tasks still open
        (they keep a warning from being sent twice). Returns (deliveries, events) deleted."""
        if older_than < timedelta(days=1):
            raise InvalidCommand("keep at least one day of delivered events")
        cutoff = clock.now() - older_than
        d, e = WebhookDelivery, OutboxEvent
        open_task = (sa.select(HumanTask.id).where(HumanTask.case_id == e.case_id,
                                                    HumanTask.spiff_task_id == e.task_spiff_id,
                                                    HumanTask.state.in_(OPEN_STATES)).exists())
        with self._sessions() as session, session.begin():
            gone = session.execute(sa.delete(d).where(d.state == "delivered", d.delivered_at < cutoff)).rowcount
            events = session.execute(sa.delete(e).where(
                e.routed_at < cutoff, ~sa.select(d.id).where(d.event_id == e.id).exists(),
                sa.or_(e.kind != TASK_WARNING, ~open_task))).rowcount
        return gone, events

    def status(self, clock: Clock = SYSTEM_CLOCK) -> WebhookStatus:
        now = clock.now()
        d, e = WebhookDelivery, OutboxEvent
        with self._readers() as session:
            by_state = dict(session.execute(sa.select(d.state, sa.func.count()).group_by(d.state)).all())
            due = session.scalar(_ready(sa.select(sa.func.count()).select_from(d), now))
            unrouted = session.scalar(sa.select(sa.func.count()).select_from(e).where(e.routed_at.is_(None)))
            oldest = min(filter(None, [
                session.scalar(sa.select(sa.func.min(e.recorded_at)).where(e.routed_at.is_(None))),
                session.scalar(sa.select(sa.func.min(e.recorded_at)).join(d, d.event_id == e.id)
                               .where(d.state == PENDING))]), default=None)
        return WebhookStatus(unrouted, by_state.get("pending", 0), due, by_state.get("dead", 0),
                             by_state.get("delivered", 0), max(now - oldest, timedelta(0)) if oldest else None)

    # -- delivery -----------------------------------------------------------------------------------

    def route(self, clock: Clock = SYSTEM_CLOCK, *, limit: int = 500) -> int:
        """Turn new events into deliveries for the subscriptions that want them; returns events routed."""
        now = clock.now()
        with self._sessions() as session, session.begin():
            events = session.execute(sa.select(OutboxEvent.id, OutboxEvent.kind, OutboxEvent.case_id)
                                     .where(OutboxEvent.routed_at.is_(None)).order_by(OutboxEvent.id)
                                     .limit(limit).with_for_update(skip_locked=True)).all()
            if not events:
                return 0
            subscriptions = session.execute(sa.select(WebhookSubscription.id, WebhookSubscription.events,
                                                      WebhookSubscription.after_event_id)).all()
            rows = [{"event_id": ev.id, "subscription_id": sub.id, "case_id": ev.case_id, "state": "pending",
                     "attempts": 0, "next_attempt_at": now, "created_at": now}
                    for ev in events for sub in subscriptions
                    if ev.id > sub.after_event_id and (sub.events is None or ev.kind in sub.events)]
            if rows:
                session.execute(sa.insert(WebhookDelivery), rows)
            session.execute(sa.update(OutboxEvent).where(OutboxEvent.id.in_([ev.id for ev in events]))
                            .values(routed_at=now))
        return len(events)

    def claim(self, clock: Clock, *, limit: int | None = None) -> list[_Job]:
        """Lease up to `limit` due deliveries, at most one per receiver and case (the earliest)."""
        now, limit = clock.now(), limit or self.settings.batch
        d, sub = WebhookDelivery, WebhookSubscription
        due = (_ready(sa.select(d.id), now).where(sa.or_(d.claimed_until.is_(None), d.claimed_until < now))
               .order_by(d.next_attempt_at, d.id).limit(limit).with_for_update(of=d, skip_locked=True))
        token = str(uuid.uuid4())
        with self._sessions() as session, session.begin():
            ids = list(session.scalars(due))
            if not ids:
                return []
            session.execute(sa.update(d).where(d.id.in_(ids))
                            .values(claimed_until=now + self.settings.lease, claim_token=token))
            rows = session.execute(task_of(
                sa.select(d.id, d.subscription_id, d.attempts, sub.url, sub.secret, OutboxEvent, HumanTask.id)
                .join(sub, sub.id == d.subscription_id).join(OutboxEvent, OutboxEvent.id == d.event_id))
                .where(d.id.in_(ids)).order_by(d.next_attempt_at, d.id)).all()
            return [_Job(r[0], r.subscription_id, r.attempts, r.url, r.secret, r.OutboxEvent.uid,
                         r.OutboxEvent.kind, body_of(r.OutboxEvent, r[6]), token) for r in rows]

    def deliver_due(self, clock: Clock = SYSTEM_CLOCK) -> PumpResult:
        """One batch: claim, send, record. A receiver that fails is not tried again in this batch; its
        other deliveries wait for its next attempt without using up theirs."""
        result = PumpResult()
        jobs = self.claim(clock)
        broken: dict[int, datetime] = {}
        with requests.Session() as http:
            for job in jobs:
                if job.subscription_id in broken:
                    self._release(job, broken[job.subscription_id])
                    result.deferred += 1
                    continue
                ok, status, error = self._send(http, job)
                state, next_at = self._record(job, clock, ok, status, error)
                if ok:
                    result.delivered += 1
                    continue
                result.errors.append(f"delivery {job.delivery_id} ({job.kind}) to {job.url}: {error}")
                if state == "dead":
                    result.dead += 1
                else:
                    result.failed += 1
                broken[job.subscription_id] = next_at
        return result

    def pump(self, clock: Clock = SYSTEM_CLOCK, *, max_rounds: int = 50, stop=None) -> PumpResult:
        """Route what is new and deliver what is due, batch after batch, until a batch delivers nothing
        (or `max_rounds` batches went out, so a loop gets to look up now and then, or `stop` is set)."""
        total = PumpResult()
        for _ in range(max_rounds):
            if stop is not None and stop.is_set():
                break
            total.routed += self.route(clock)
            result = self.deliver_due(clock)
            total.add(result)
            # A case's next event becomes due only once the one before it went out: go round again
            # while anything was sent.
            if result.delivered == 0:
                break
        return total

    def _send(self, http: requests.Session, job: _Job) -> tuple[bool, int | None, str | None]:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "GridFlow-Webhooks/1",
                   EVENT_ID_HEADER: job.event_uid, "X-GridFlow-Event": job.kind,
                   "X-GridFlow-Delivery": str(job.delivery_id), "X-GridFlow-Attempt": str(job.attempts + 1),
                   SIGNATURE_HEADER: sign(job.secret, int(time.time()), job.body)}
        try:
            # Streamed: of a receiver's answer only the status and the start of an error body are read.
            with http.post(job.url, data=job.body, headers=headers, allow_redirects=False, stream=True,
                           timeout=(self.settings.connect_timeout, self.settings.read_timeout)) as response:
                if 200 <= response.status_code < 300:
                    return True, response.status_code, None
                start = response.raw.read(1000, decode_content=True).decode("utf-8", "replace")
                return False, response.status_code, _short(f"HTTP {response.status_code}: {start}")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # the latter two: the connection broke while the start of an error body was read
            return False, None, _short(f"{type(exc).__name__}: {exc}")

    def _record(self, job: _Job, clock: Clock, ok: bool, status: int | None,
                error: str | None) -> tuple[str, datetime | None]:
        now, attempts = clock.now(), job.attempts + 1
        values = {"attempts": attempts, "last_attempt_at": now, "last_status": status, "last_error": error,
                  "claimed_until": None, "claim_token": None}
        next_at = None
        if ok:
            state = "delivered"
            values.update(state=state, delivered_at=now)
        elif attempts >= self.settings.max_attempts:
            state = "dead"
            values.update(state=state)
            log.warning("delivery %s is dead after %s attempts: %s", job.delivery_id, attempts, error)
        else:
            state, next_at = "pending", now + self.settings.backoff(attempts)
            values.update(next_attempt_at=next_at)
        with self._sessions() as session, session.begin():
            # Only while the lease is ours: had it run out and another process taken the delivery, its
            # outcome is the one that counts.
            session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == job.delivery_id,
                                                             WebhookDelivery.claim_token == job.token)
                            .values(**values))
        return state, next_at

    def _release(self, job: _Job, not_before: datetime | None) -> None:
        values = {"claimed_until": None, "claim_token": None}
        if not_before is not None:
            values["next_attempt_at"] = not_before
        with self._sessions() as session, session.begin():
            session.execute(sa.update(WebhookDelivery).where(WebhookDelivery.id == job.delivery_id,
                                                             WebhookDelivery.claim_token == job.token)
                            .values(**values))


def delivery_loop(webhooks: Webhooks, outbox, stop, *, interval: float = 2.0, warn_every: float = 10.0,
                  report=print, clock: Clock = SYSTEM_CLOCK) -> PumpResult:
    """`gridflow webhooks deliver`: pump every `interval` seconds until `stop` (a threading.Event) is
    set; look for tasks crossing into yellow every `warn_every` seconds. A database outage is reported
    and waited out: the outbox keeps everything until delivery resumes."""
    total, last_warned = PumpResult(), float("-inf")
    while not stop.is_set():
        try:
            if warn_every and time.monotonic() - last_warned >= warn_every:
                warned = outbox.emit_warnings(clock)
                last_warned = time.monotonic()
                if warned:
                    report(f"warnings: {warned} tasks crossed into yellow")
            result = webhooks.pump(clock, stop=stop)
        except Exception as exc:  # keep delivering through a database outage; the next round retries
            log.exception("delivery round failed")
            report(f"delivery round failed ({type(exc).__name__}: {_short(str(exc), 200)}); retrying")
            stop.wait(interval)
            continue
        total.add(result)
        if result.attempted or result.deferred:
            report(f"delivered {result.delivered}, failed {result.failed}, dead {result.dead}, "
                   f"deferred {result.deferred}")
            for error in result.errors:
                report(f"  {error}")
        if result.delivered == 0:
            stop.wait(interval)
    return total


def _ready(query, now: datetime):
    """Deliveries that may go out now: pending, due, of an active subscription, and the earliest of
    their case still pending for that subscription (nor waiting on an earlier event not routed yet,
    which another process may be routing at this moment)."""
    d, earlier, unrouted = WebhookDelivery, aliased(WebhookDelivery), aliased(OutboxEvent)
    sub = WebhookSubscription
    return (query.join(sub, sub.id == d.subscription_id)
            .where(d.state == PENDING, d.next_attempt_at <= now, sub.active.is_(True),
                   ~sa.exists().where(earlier.subscription_id == d.subscription_id, earlier.case_id == d.case_id,
                                      earlier.state == PENDING, earlier.event_id < d.event_id),
                   ~sa.exists().where(unrouted.case_id == d.case_id, unrouted.routed_at.is_(None),
                                      unrouted.id < d.event_id)))


def _check_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidCommand(f"{url!r} is not an http(s) URL with a host")
    if len(url) > 2000:
        raise InvalidCommand("the URL is longer than 2000 characters")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
