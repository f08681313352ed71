"""`gridflow case … | tasks | task … | message`: cases and their tasks, acted on from a terminal."""
from __future__ import annotations

import click

from api.cli import render
from api.cli.common import engine_of, json_object, reports_errors

@click.group()
def case():
    """Start, list and show cases."""


@case.command("start")
@click.argument("key")
@click.option("--data", default="{}", help="Matter data as JSON (title, grid_code, category, ...).")
@click.option("--version", type=int, default=None, help="Pin a version instead of the latest.")
@click.option("--actor", default="grid-worker", show_default=True)
@click.option("--role", default="grid_worker", show_default=True)
@click.pass_context
@reports_errors
def case_start(ctx, key, data, version, actor, role):
    """Start a case of process KEY."""
    engine = engine_of(ctx)
    case_id = engine.cases.start(key, json_object(data), actor=actor, role=role, version=version)
    click.echo(render.case(engine.queries.case(case_id)))


@case.command("show")
@click.argument("case_id", type=int)
@click.pass_context
@reports_errors
def case_show(ctx, case_id):
    """A case as it stands, with its open tasks and its timeline."""
    engine = engine_of(ctx)
    click.echo(render.case(engine.queries.case(case_id)))
    click.echo(render.timeline(engine.queries.history(case_id)))


@case.command("list")
@click.option("--status", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.pass_context
@reports_errors
def case_list(ctx, status, limit):
    """List cases."""
    rows = engine_of(ctx).queries.cases(status=status, limit=limit)
    click.echo(render.table(["id", "process", "v", "status", "level", "grid", "unit", "title"],
                            [[c.id, c.process_key, c.definition_version, c.status, c.level or "", c.grid_code or "",
                              c.unit or "", c.title] for c in rows]) if rows else "no cases")


@click.command()
@click.option("--role", default=None, help="grid_worker, grid_agency or responsible_unit")
@click.option("--unit", default=None)
@click.option("--grid", default=None)
@click.option("--level", default=None, help="Agency level: community, township, county, city")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--all", "show_all", is_flag=True, help="Include finished tasks.")
@click.pass_context
@reports_errors
def tasks(ctx, role, unit, grid, level, case_id, show_all):
    """List open human tasks."""
    rows = engine_of(ctx).queries.tasks(role=role, unit=unit, grid_code=grid, agency_level=level, case_id=case_id,
                                      open_only=not show_all, limit=1000)
    click.echo(render.tasks(rows) if rows else "no open tasks")


@click.group()
def task():
    """Act on a human task: complete, sign for (签收), return (退单)."""


def _task_role(ctx, task_id, role):
    return role or engine_of(ctx).queries.task(task_id).role


@task.command("complete")
@click.argument("task_id", type=int)
@click.option("--data", default="{}", help="The task's form data as JSON.")
@click.option("--actor", default="cli")
@click.option("--role", default=None, help="Acting role (default: the task's).")
@click.pass_context
@reports_errors
def task_complete(ctx, task_id, data, actor, role):
    """Complete a task with its form data."""
    engine = engine_of(ctx)
    payload = json_object(data)
    case_id = engine.queries.task(task_id).case_id
    engine.cases.complete_task(task_id, payload, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(case_id)))


@task.command("sign")
@click.argument("task_id", type=int)
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_sign(ctx, task_id, actor, role):
    """Sign for a dispatched task (签收)."""
    engine = engine_of(ctx)
    engine.cases.sign_for(task_id, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("return")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="Why the unit is not responsible (required).")
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_return(ctx, task_id, reason, actor, role):
    """Return a dispatched task to the agency (退单), with a reason."""
    engine = engine_of(ctx)
    engine.cases.return_task(task_id, reason, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("refuse")
@click.argument("task_id", type=int)
@click.option("--reason", required=True, help="Why the work is off the county's matter list (required).")
@click.option("--actor", default="cli")
@click.option("--role", default=None)
@click.pass_context
@reports_errors
def task_refuse(ctx, task_id, reason, actor, role):
    """A grid worker refuses work off the county's matter list (条例第十三条), with a reason."""
    engine = engine_of(ctx)
    engine.cases.refuse_task(task_id, reason, actor=actor, role=_task_role(ctx, task_id, role))
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("extend")
@click.argument("task_id", type=int)
@click.option("--days", type=int, required=True, help="Working days asked for (1-10).")
@click.option("--reason", required=True)
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_extend(ctx, task_id, days, reason, actor):
    """Ask for an extension (延期申请) before the deadline."""
    engine = engine_of(ctx)
    engine.cases.request_extension(task_id, days, reason, actor=actor, role="responsible_unit")
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("decide-extension")
@click.argument("task_id", type=int)
@click.option("--approve/--refuse", required=True)
@click.option("--comment", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_decide_extension(ctx, task_id, approve, comment, actor):
    """The dispatching agency approves or refuses an extension request."""
    engine = engine_of(ctx)
    engine.cases.decide_extension(task_id, approve, actor=actor, role="grid_agency", comment=comment)
    click.echo(render.case(engine.queries.case(engine.queries.task(task_id).case_id)))


@task.command("remind")
@click.argument("task_id", type=int)
@click.option("--note", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def task_remind(ctx, task_id, note, actor):
    """Remind the unit before its deadline (催办)."""
    engine_of(ctx).cases.remind(task_id, note, actor=actor, role="grid_agency")
    click.echo(f"reminded task {task_id}")


@case.command("supervise")
@click.argument("case_id", type=int)
@click.option("--card", type=click.Choice(["normal", "yellow", "red"]), required=True)
@click.option("--level", "acting_level", type=click.Choice(["township", "county", "city"]), required=True,
              help="Level of the supervising agency (higher than the case's).")
@click.option("--note", default="")
@click.option("--actor", default="cli")
@click.pass_context
@reports_errors
def case_supervise(ctx, case_id, card, acting_level, note, actor):
    """Supervise a case from a higher level (督办)."""
    engine_of(ctx).cases.supervise(case_id, card, acting_level, note, actor=actor, role="grid_agency")
    click.echo(f"case {case_id}: {card} supervision by the {acting_level} level recorded")



@click.command()
@click.argument("case_id", type=int)
@click.argument("name")
@click.option("--data", default="{}", help="Message payload as JSON.")
@click.option("--actor", default="platform")
@click.option("--role", default="platform")
@click.pass_context
@reports_errors
def message(ctx, case_id, name, data, actor, role):
    """Send message NAME into a case (a unit system's feedback, a resident's follow-up)."""
    engine = engine_of(ctx)
    engine.cases.send_message(case_id, name, json_object(data), actor=actor, role=role)
    click.echo(render.case(engine.queries.case(case_id)))
