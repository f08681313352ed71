"""`gridflow webhooks`: subscriptions, the delivery process, its status, and reviving dead deliveries."""
from __future__ import annotations

import signal
import threading

import click

from engine.delivery.outbox import KINDS

from api.cli import render
from api.cli.common import engine_of, reports_errors




def _kinds(text: str | None) -> list[str] | None:
    if text is None:
        return None
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise click.UsageError(f"unknown event kinds: {', '.join(unknown) or '(none)'}; known: {', '.join(KINDS)}")
    return kinds


def _age(delta) -> str:
    if delta is None:
        return "none"
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


@click.group()
def webhooks():
    """Events out: signed webhooks to the platform (status changes, new tasks, warnings, overdue)."""


@webhooks.command("add")
@click.argument("url")
@click.option("--secret", default=None, help="Shared secret for the HMAC signature, at least 16 characters "
                                              "(default: one is made and shown once).")
@click.option("--events", default=None, help=f"Comma-separated kinds (default: all): {', '.join(KINDS)}")
@click.option("--by", "who", default="admin", show_default=True)
@click.pass_context
@reports_errors
def add(ctx, url, secret, events, who):
    """Subscribe URL to events recorded from now on."""
    sub_id, used = engine_of(ctx).webhooks.subscribe(url, secret, _kinds(events), by=who)
    click.echo(f"subscription {sub_id}: {url} ({events or 'all events'})")
    if secret is None:
        click.echo(f"secret: {used}\n(keep it: the receiver checks X-GridFlow-Signature with it; it is not shown again)")


@webhooks.command("list")
@click.pass_context
@reports_errors
def list_(ctx):
    """Subscriptions with their pending, dead and delivered counts and latest error."""
    rows = engine_of(ctx).webhooks.subscriptions()
    if not rows:
        click.echo("no webhook subscriptions; add one with `gridflow webhooks add URL`")
        return
    click.echo(render.table(["id", "url", "events", "active", "pending", "dead", "delivered", "secret", "latest error"],
                            [[s.id, s.url, ",".join(s.events) if s.events else "all", "yes" if s.active else "paused",
                              s.pending, s.dead, s.delivered, s.secret_hint, (s.last_error or "")[:60]]
                             for s in rows]))


@webhooks.command("remove")
@click.argument("subscription_id", type=int)
@click.pass_context
@reports_errors
def remove(ctx, subscription_id):
    """Remove a subscription and its deliveries."""
    engine_of(ctx).webhooks.remove(subscription_id)
    click.echo(f"removed subscription {subscription_id}")


@webhooks.command("pause")
@click.argument("subscription_id", type=int)
@click.pass_context
@reports_errors
def pause(ctx, subscription_id):
    """Stop sending to a subscription; its events wait and go out on resume."""
    engine_of(ctx).webhooks.set_active(subscription_id, False)
    click.echo(f"paused subscription {subscription_id}")


@webhooks.command("resume")
@click.argument("subscription_id", type=int)
@click.pass_context
@reports_errors
def resume(ctx, subscription_id):
    """Send to a paused subscription again."""
    engine_of(ctx).webhooks.set_active(subscription_id, True)
    click.echo(f"resumed subscription {subscription_id}")


@webhooks.command("deliver")
@click.option("--once", is_flag=True, help="Deliver what is due now and exit.")
@click.option("--interval", type=click.FloatRange(0.1, 3600), default=2.0, show_default=True,
              help="Seconds between looks when idle.")
@click.option("--batch", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--max-attempts", type=click.IntRange(1, 100), default=12, show_default=True,
              help="Attempts before a delivery is dead (revive with `webhooks retry`).")
@click.option("--timeout", type=click.FloatRange(0.5, 120), default=10.0, show_default=True,
              help="Seconds to wait for a receiver's answer (connecting: 3 s at most).")
@click.pass_context
@reports_errors
def deliver(ctx, once, interval, batch, max_attempts, timeout):
    """Run the delivery process (also part of `gridflow worker`); several may run at once."""
    from engine.clock import SYSTEM_CLOCK
    from engine.delivery.webhooks import DeliverySettings, Webhooks, delivery_loop
    engine = engine_of(ctx)
    hooks = Webhooks(engine.sessions, engine.readers,
                     DeliverySettings(max_attempts=max_attempts, read_timeout=timeout,
                                      connect_timeout=min(3.0, timeout), batch=batch))
    if once:
        engine.outbox.emit_warnings(SYSTEM_CLOCK)
        result = hooks.pump(SYSTEM_CLOCK)
        click.echo(f"routed {result.routed} events; delivered {result.delivered}, failed {result.failed} "
                   f"(will retry), dead {result.dead}, deferred {result.deferred}")
        for error in result.errors:
            click.echo(f"  {error}")
        return
    stop = threading.Event()
    # SIGTERM from a service manager ends like Ctrl-C: the delivery in flight is finished and recorded.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"delivering webhooks from {engine.url} every {interval:g}s when idle; Ctrl-C stops")
    delivery_loop(hooks, engine.outbox, stop, interval=interval, report=click.echo)
    click.echo("delivery stopped")


@webhooks.command("status")
@click.pass_context
@reports_errors
def status(ctx):
    """Pending, due, dead and delivered counts, and how old the oldest undelivered event is."""
    s = engine_of(ctx).webhooks.status()
    click.echo(f"events not yet routed: {s.unrouted}\npending deliveries: {s.pending} ({s.due} due now)\n"
               f"dead deliveries: {s.dead}\ndelivered: {s.delivered}\n"
               f"oldest undelivered event: {_age(s.oldest_pending_age)}")


@webhooks.command("deliveries")
@click.option("--state", type=click.Choice(["pending", "delivered", "dead"]), default=None)
@click.option("--subscription", "subscription_id", type=int, default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
@reports_errors
def deliveries(ctx, state, subscription_id, limit):
    """Recent deliveries, newest first, with attempts and the latest error."""
    rows = engine_of(ctx).webhooks.deliveries(state=state, subscription_id=subscription_id, limit=limit)
    if not rows:
        click.echo("no deliveries")
        return
    click.echo(render.table(["id", "sub", "event", "kind", "case", "state", "attempts", "next try (CST)", "error"],
                            [[d.id, d.subscription_id, e.uid[:8], e.kind, d.case_id, d.state, d.attempts,
                              render.when(d.next_attempt_at) if d.state == "pending" else "",
                              (d.last_error or "")[:60]] for d, e in rows]))


@webhooks.command("retry")
@click.option("--subscription", "subscription_id", type=int, default=None, help="Only this subscription's.")
@click.option("--delivery", "delivery_id", type=int, default=None, help="Only this delivery.")
@click.pass_context
@reports_errors
def retry(ctx, subscription_id, delivery_id):
    """Revive dead deliveries: they are tried again now with a fresh count of attempts."""
    n = engine_of(ctx).webhooks.retry(subscription_id=subscription_id, delivery_id=delivery_id)
    click.echo(f"revived {n} dead deliveries")


@webhooks.command("prune")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="Keep delivered events this many days.")
@click.pass_context
@reports_errors
def prune(ctx, days):
    """Delete events delivered more than DAYS ago (pending and dead ones stay)."""
    from datetime import timedelta
    deliveries_gone, events_gone = engine_of(ctx).webhooks.prune(timedelta(days=days))
    click.echo(f"deleted {deliveries_gone} deliveries and {events_gone} events older than {days} days")
