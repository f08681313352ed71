"""What every command group shares: the engine from `--db`, JSON options, dates, and errors as one readable line."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from functools import wraps
from pathlib import Path

import click

from engine.definitions.bundle import DefinitionRejected
from engine.errors import EngineError
from engine.service import Engine
from engine.store.db import DATABASE_UNAVAILABLE

from api.cli import render

PROJECT_PROCESSES = Path(__file__).resolve().parents[2] / "processes"


def engine_of(ctx) -> Engine:
    if "engine" not in ctx.obj:
        ctx.obj["engine"] = Engine(ctx.obj["db"])
    return ctx.obj["engine"]


def json_object(text: str, what: str = "--data") -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError(f"{what} must be a JSON object, like '{{\"title\": \"...\"}}'")
    return value


def reports_errors(func):
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DefinitionRejected as exc:
            click.echo("error: deploy refused, nothing was changed:", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(2)
        except EngineError as exc:
            click.echo(f"error ({exc.code}): {exc}", err=True)
            sys.exit(1)
        except DATABASE_UNAVAILABLE as exc:
            click.echo(f"error (database): {str(exc.orig).strip()}; check --db / GRIDFLOW_DATABASE_URL", err=True)
            sys.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click reports bad usage itself
        except Exception as exc:  # a defect: say so in one line; GRIDFLOW_DEBUG=1 shows the traceback
            if os.environ.get("GRIDFLOW_DEBUG"):
                raise
            click.echo(f"error (internal): {type(exc).__name__}: {exc} — please report it; "
                       "rerun with GRIDFLOW_DEBUG=1 for details", err=True)
            sys.exit(70)
    return wrapper


def change_date(value):
    """--date as given, else today in Beijing (registry dates are the administrators' calendar dates)."""
    return value.date() if value is not None else datetime.now(render.BEIJING).date()


def parse_dates(text: str) -> list[str]:
    return [d.strip() for d in text.split(",") if d.strip()]
