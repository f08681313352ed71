"""The engine behind the running app, for views and helpers."""
from __future__ import annotations

from flask import current_app

from engine.clock import SYSTEM_CLOCK
from engine.service import Engine

EXTENSION = "gridflow"


def current_engine() -> Engine:
    return current_app.extensions[EXTENSION]


def current_clock():
    """The clock commands run by: the system's, or a fixed one a test or a replay hands to `create_app`."""
    return current_app.config.get("GRIDFLOW_CLOCK") or SYSTEM_CLOCK
