"""The HTTP resources. Each module holds one flask-smorest Blueprint; `create_app` registers every one
listed here, in this order."""
from __future__ import annotations

from . import cases, health, history, messages, tasks

BLUEPRINTS = [health.blp, cases.blp, tasks.blp, messages.blp, history.blp]
# (definitions, registry, catalog: part 2)
from . import definitions, docs, registry  # noqa: E402

BLUEPRINTS += [definitions.blp, registry.blp, registry.catalog_blp, docs.blp]
# (audit, issue 6; county matter lists, issue 4)
from . import audit, matter_lists  # noqa: E402

BLUEPRINTS += [audit.blp, matter_lists.blp]
