"""`gridflow audit`: for auditors and supervisors (纪检, 督查). Reads and checks; never changes a case."""
from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from engine.audit import dossier as dossiers

from api.cli import render
from api.cli.common import engine_of, reports_errors


@click.group()
def audit():
    """Verify history chains, sign checkpoints, replay cases, see a case as it was, file its dossier."""


@audit.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Key file to create (keep it apart from the database; set GRIDFLOW_AUDIT_KEY_FILE to it).")
@reports_errors
def keygen(out):
    """Create the checkpoint signing key (never overwrites one)."""
    from engine.audit.trail import generate_key
    click.echo(f"wrote audit key {generate_key(out)} to {out} (owner-only); export GRIDFLOW_AUDIT_KEY_FILE={out}")


@audit.command("checkpoint")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), default=None,
              help="Key file (default: GRIDFLOW_AUDIT_KEY_FILE).")
@click.option("--by", "who", default="auditor", show_default=True)
@click.pass_context
@reports_errors
def checkpoint(ctx, key_file, who):
    """Sign every case's current history head."""
    row = engine_of(ctx).audit.checkpoint(by=who, key_file=key_file)
    click.echo(f"checkpoint {row.id}: {row.case_count} case heads signed at {render.when(row.created_at)} CST "
               f"with key {row.key_id}")
    click.echo(f"witness (kept beside the key; file a copy elsewhere): {row.id}:{row.seq}:{row.signature}")


@audit.command("verify")
@click.option("--case", "case_id", type=int, default=None, help="Only this case.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), default=None,
              help="Key file (default: GRIDFLOW_AUDIT_KEY_FILE); without one, checkpoints are not checked.")
@click.option("--witness", default=None, metavar="ID:NUMBER:SIGNATURE",
              help="A checkpoint witness as `audit checkpoint` printed it (default: the one beside the key).")
@click.pass_context
@reports_errors
def verify(ctx, case_id, key_file, witness):
    """Check every case's hash chain and the latest signed checkpoint; exit 3 when something is broken."""
    progress = None if case_id else (lambda r: click.echo(f"  {r.cases} cases, {r.events} events...", err=True))
    report = engine_of(ctx).audit.verify(case_id, key_file=key_file, progress=progress, witness=witness)
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.checkpoint_id:
        click.echo(f"checkpoint {report.checkpoint_id} of {render.when(report.checkpoint_at)} CST "
                   f"({report.checkpoint_cases} cases)")
    if report.findings:
        click.echo(render.table(["case", "event", "kind", "detail"],
                                [[f.case_id or "", f.seq or "", f.kind, f.detail] for f in report.findings]))
    click.echo(f"{report.cases} cases, {report.events} events: "
               + ("intact" if report.intact else f"{len(report.findings)} broken"))
    if not report.intact:
        sys.exit(3)


def _divergence_text(d) -> str:
    lines = [f"case {d.case_id}: step {d.seq} ({d.command}) diverges: {d.reason}"]
    keys = list(dict.fromkeys([*d.recorded, *d.replayed]))
    rows = [[k, json.dumps(d.recorded.get(k), ensure_ascii=False), json.dumps(d.replayed.get(k), ensure_ascii=False)]
            for k in keys]
    lines.append(render.table(["", "recorded", "replayed"], rows))
    return "\n".join(lines)


@audit.command("replay")
@click.argument("case_id", type=int, required=False)
@click.option("--all", "every", is_flag=True, help="Replay every case (in worker processes).")
@click.option("--processes", type=click.IntRange(1, 64), default=None, help="Worker processes (default: cores).")
@click.pass_context
@reports_errors
def replay(ctx, case_id, every, processes):
    """Re-execute CASE_ID's recorded commands (or --all cases) and check every step's state hash."""
    if (case_id is None) == (not every):
        raise click.UsageError("give a CASE_ID or --all")
    audit_service = engine_of(ctx).audit
    if case_id is not None:
        result = audit_service.replay(case_id)
        if result.equal:
            click.echo(f"case {case_id}: {result.steps} steps replayed, every state hash equal")
            return
        click.echo(f"case {case_id}: {result.cannot}" if result.cannot else _divergence_text(result.divergence))
        sys.exit(3)
    report = audit_service.replay_all(processes=processes,
                                      progress=lambda r: click.echo(f"  {r.cases} cases replayed...", err=True))
    for result in report.results:
        click.echo(f"case {result.case_id}: {result.cannot}" if result.cannot else _divergence_text(result.divergence))
    click.echo(f"{report.cases} cases: {report.equal} equal, {len(report.diverged)} diverged, "
               f"{len(report.cannot)} cannot be replayed")
    if report.results:
        sys.exit(3)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.UsageError(f"{text!r} is not a date-time like 2026-11-05T10:00 (Beijing time unless it "
                               "gives an offset)") from None
    return moment.replace(tzinfo=render.BEIJING) if moment.tzinfo is None else moment


@audit.command("as-of")
@click.argument("case_id", type=int)
@click.argument("moment")
@click.option("--json", "as_json", is_flag=True)
@click.option("--reveal", is_flag=True, help="Show personal data (the reader's role must allow it).")
@click.pass_context
@reports_errors
def as_of(ctx, case_id, moment, as_json, reveal):
    """CASE_ID as it was at MOMENT (Beijing time unless an offset is given): status, tasks, deadlines, data."""
    view = engine_of(ctx).audit.as_of(case_id, _moment(moment), reveal=reveal)
    if as_json:
        click.echo(json.dumps(view.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"case {case_id} as of {render.when(view.moment)} CST (after step {view.last_seq}, "
               f"{render.when(view.last_step_at)})")
    click.echo(f"  status {view.status}   level {view.level or ''}   unit {view.unit or ''}"
               f"{'   supervision ' + view.supervision if view.supervision else ''}")
    if view.open_tasks:
        click.echo(render.table(["task", "element", "role", "unit", "state", "since (CST)"],
                                [[t["id"], t["element"], t["role"], t["unit"] or "", t["state"],
                                  render.when(datetime.fromisoformat(t["since"]))] for t in view.open_tasks]))
    for d in view.deadlines:
        due = render.when(datetime.fromisoformat(d["due_at"])) if d["due_at"] else "?"
        click.echo(f"  deadline {d['name']}: due {due} CST" + (" — passed at that moment" if d["passed"] else ""))
    click.echo("  data: " + json.dumps(view.data, ensure_ascii=False))


@audit.command("dossier")
@click.argument("case_id", type=int)
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the readable page to this file.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON to this file (default: standard output when no --html).")
@click.option("--reveal", is_flag=True, help="Show personal data (the reader's role must allow it).")
@click.pass_context
@reports_errors
def dossier(ctx, case_id, html_out, json_out, reveal):
    """CASE_ID's dossier: every step with actor, role, time, deadline standing, explanations; chain and replay."""
    engine = engine_of(ctx)
    data = engine.audit.dossier(case_id, engine.queries, reveal=reveal)
    if html_out is not None:
        html_out.write_text(dossiers.to_html(data), encoding="utf-8")
        click.echo(f"wrote {html_out}")
    if json_out is not None:
        json_out.write_text(dossiers.to_json(data), encoding="utf-8")
        click.echo(f"wrote {json_out}")
    if html_out is None and json_out is None:
        click.echo(dossiers.to_json(data))
