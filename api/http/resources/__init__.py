"""The HTTP resources. Each module holds one flask-smorest Blueprint; `create_app` registers every one
listed here, in this order."""
from __future__ import annotations

from api.http.resources import (
    audit, cases, catalog, definitions, docs, health, history, matter_lists, messages, registry, tasks,
)

BLUEPRINTS = [health.blp, cases.blp, tasks.blp, messages.blp, history.blp, definitions.blp, registry.blp,
              catalog.blp, docs.blp, audit.blp, matter_lists.blp]
