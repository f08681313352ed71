"""The HTTP resources. Each module holds one flask-smorest Blueprint; `create_app` registers every one
listed here, in this order."""
from __future__ import annotations

from api.http.resources import audit
from api.http.resources import cases
from api.http.resources import catalog
from api.http.resources import definitions
from api.http.resources import docs
from api.http.resources import health
from api.http.resources import history
from api.http.resources import matter_lists
from api.http.resources import messages
from api.http.resources import registry
from api.http.resources import tasks
# (statistics: its resource module here)
from api.http.resources import statistics

# (instance migration: its resource module here)
from api.http.resources import migrations

BLUEPRINTS = [health.blp, cases.blp, tasks.blp, messages.blp, history.blp, definitions.blp, registry.blp,
              catalog.blp, docs.blp, audit.blp, matter_lists.blp]
# (statistics: BLUEPRINTS += [...])
BLUEPRINTS += [statistics.blp]

# (instance migration: BLUEPRINTS += [...])
BLUEPRINTS += [migrations.blp]
