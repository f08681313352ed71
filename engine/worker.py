"""`gridflow worker`: the timer service, a process of its own (never inside web workers).

APScheduler is only the alarm clock: a periodic sweep, plus a one-off wake-up at the next due time when
that comes sooner. What is due is read from the database each time, so nothing is lost while the worker
is down and its first sweep at start-up catches up.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import timedelta, timezone

from apscheduler.schedulers.blocking import BlockingScheduler

from engine.audit.trail import KEY_ENV
from engine.clock import SYSTEM_CLOCK

log = logging.getLogger("gridflow.worker")

# Timers fire strictly after their due time; wake a moment later so the first look finds them due.
WAKE_MARGIN = timedelta(milliseconds=50)
WEBHOOK_INTERVAL = 2.0  # seconds between looks at the outbox
HOUSEKEEPING_INTERVAL = 3600.0  # seconds between audit checkpoints and idempotency clean-ups
# A platform retries a request within minutes; a week of idempotency records is ample.
IDEMPOTENCY_RETENTION = timedelta(days=7)


def worker_name() -> str:
    return f"timer-worker@{socket.gethostname()}:{os.getpid()}"


def _exit(*_):
    raise SystemExit(0)


class TimerWorker:
    def __init__(self, engine, *, interval: float = 10.0, batch: int = 100, name: str | None = None,
                 report=print):
        self.engine = engine
        self.interval = interval
        self.batch = batch
        self.name = name or worker_name()
        self.report = report
        self._busy = threading.Lock()
        self.scheduler = BlockingScheduler(timezone=timezone.utc, job_defaults={
            # A sweep that could not run on time is simply run late; missed ticks are not replayed.
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})

    def tick(self) -> None:
        if not self._busy.acquire(blocking=False):  # the periodic and the wake-up job met
            return
        try:
            result = self.engine.timers.sweep(SYSTEM_CLOCK, worker=self.name, batch=self.batch,
                                              progress=lambda r: self.report(f"  fired {r.fired_cases} cases..."))
            if result.fired_cases or result.failed_cases:
                self.report(f"sweep: fired timers of {result.fired_cases} cases, {result.failed_cases} failed")
            for error in result.errors:
                self.report(f"  error: {error}")
            self._schedule_wake()
            # Warnings (预警) for the webhooks: a task crossing into yellow, once.
            warned = self.engine.outbox.emit_warnings(SYSTEM_CLOCK)
            if warned:
                self.report(f"warnings: {warned} tasks crossed into yellow")
        except Exception:  # keep the service alive through a database outage; the next tick retries
            log.exception("sweep failed; retrying at the next tick")
        finally:
            self._busy.release()

    def deliver_webhooks(self) -> None:
        """Webhooks from the outbox, as a job of its own: a slow receiver never delays a sweep."""
        try:
            result = self.engine.webhooks.pump(SYSTEM_CLOCK)
            if result.attempted:
                self.report(f"webhooks: delivered {result.delivered}, failed {result.failed}, dead {result.dead}")
        except Exception:  # the outbox keeps everything; the next run retries
            log.exception("webhook delivery failed; retrying at the next run")

    def housekeeping(self) -> None:
        """Hourly: sign a checkpoint of every case's history head when this process holds the audit key
        (GRIDFLOW_AUDIT_KEY_FILE; the key stays apart from the database), and drop old idempotency records."""
        try:
            if os.environ.get(KEY_ENV):
                row = self.engine.audit.checkpoint(by=self.name)
                self.report(f"audit: checkpoint {row.id} signed {row.case_count} case heads")
            purged = self.engine.idempotency.purge(IDEMPOTENCY_RETENTION)
            if purged:
                self.report(f"idempotency: dropped {purged} records older than {IDEMPOTENCY_RETENTION.days} days")
        except Exception:  # a missing key or an outage: say so and try again next hour
            log.exception("housekeeping failed; retrying at the next run")

    def _schedule_wake(self) -> None:
        next_due = self.engine.timers.next_due()
        if next_due is None:
            return
        now = SYSTEM_CLOCK.now()
        if next_due - now < timedelta(seconds=self.interval):
            self.scheduler.add_job(self.tick, "date", run_date=max(next_due, now) + WAKE_MARGIN, id="wake",
                                   replace_existing=True)

    def run(self) -> None:
        self.report(f"{self.name}: sweeping every {self.interval:g}s on {self.engine.url}; Ctrl-C stops")
        # SIGTERM (a service manager stopping us) ends like Ctrl-C: a sweep in flight finishes its
        # transaction or rolls it back, never half of it.
        signal.signal(signal.SIGTERM, _exit)
        # The first sweep runs at once: it fires whatever fell due while no worker was running.
        self.scheduler.add_job(self.tick, "interval", seconds=self.interval, id="sweep",
                               next_run_time=SYSTEM_CLOCK.now())
        self.scheduler.add_job(self.deliver_webhooks, "interval", seconds=WEBHOOK_INTERVAL, id="webhooks",
                               next_run_time=SYSTEM_CLOCK.now())
        self.scheduler.add_job(self.housekeeping, "interval", seconds=HOUSEKEEPING_INTERVAL, id="housekeeping",
                               next_run_time=SYSTEM_CLOCK.now())
        try:
            self.scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        self.report(f"{self.name}: stopped")
