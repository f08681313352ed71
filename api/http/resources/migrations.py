"""Instance migration over HTTP: a dry run or a run of moving a definition's running cases from one version
to another, and the revert of one case's migration. The process administrator's."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.access import scopes

from api.http.auth import current_principal, requires
from api.http.context import current_clock, current_engine

blp = Blueprint("migrations", __name__, url_prefix="/definitions",
                description="Instance migration (实例迁移): plan / dry run, run, revert")
MAX_VERSION = 2**31 - 1
MAX_CASES = 100_000


class MigrationRequestSchema(Schema):
    from_version = fields.Integer(required=True, data_key="from", validate=validate.Range(1, MAX_VERSION))
    to_version = fields.Integer(required=True, data_key="to", validate=validate.Range(1, MAX_VERSION))
    mapping = fields.Dict(keys=fields.String(validate=validate.Length(1, 200)),
                          values=fields.String(validate=validate.Length(1, 200)), load_default=dict,
                          validate=validate.Length(max=500),
                          metadata={"description": "element id in the source version → its id in the target, "
                                                   "for renamed elements"})
    dry_run = fields.Boolean(load_default=True, metadata={"description": "true (default): verdicts only"})
    case_ids = fields.List(fields.Integer(validate=validate.Range(1, MAX_VERSION)), load_default=None,
                           validate=validate.Length(max=MAX_CASES), metadata={"description": "only these cases"})


class MigrationMessageSchema(Schema):
    zh = fields.String(required=True)
    en = fields.String(required=True)


class ReasonSchema(Schema):
    code = fields.String(required=True, metadata={
        "description": "element_removed, element_changed, form_changed, timer_changed, message_removed, "
                       "passed_element_removed, timer_due, subprocess, not_on_source, finished, does_not_hold"})
    element = fields.String(allow_none=True)
    detail = fields.String()
    message = fields.Nested(MigrationMessageSchema)


class NoteSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "renamed, rearm, dropped or property"})
    element = fields.String(required=True)
    detail = fields.String()
    before = fields.String(allow_none=True)
    after = fields.String(allow_none=True)


class VerdictSchema(Schema):
    case_id = fields.Integer(required=True)
    revision = fields.Integer(required=True)
    status = fields.String(required=True)
    migratable = fields.Boolean(required=True)
    outcome = fields.String(required=True, metadata={
        "description": "planned (dry run), migrated, refused, skipped (no longer on the source version), "
                       "conflict (changed by another command meanwhile; run again)"})
    rechecked = fields.Boolean(required=True)
    reasons = fields.List(fields.Nested(ReasonSchema))
    notes = fields.List(fields.Nested(NoteSchema))


class VersionRefSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    definition_id = fields.Integer(required=True)
    content_hash = fields.String(required=True)


class MigrationPlanSchema(Schema):
    key = fields.String(required=True)
    from_ = fields.Nested(VersionRefSchema, data_key="from", attribute="from")
    to = fields.Nested(VersionRefSchema)
    mapping = fields.Dict(keys=fields.String(), values=fields.String())
    dry_run = fields.Boolean(required=True)
    at = fields.String(required=True)
    counts = fields.Dict()
    cases = fields.List(fields.Nested(VerdictSchema))


class RevertRequestSchema(Schema):
    case_id = fields.Integer(required=True, validate=validate.Range(1, MAX_VERSION))


class RevertSchema(Schema):
    case_id = fields.Integer(required=True)
    reverted_seq = fields.Integer(required=True, metadata={"description": "the migrated event undone"})
    event_seq = fields.Integer(required=True, metadata={"description": "the migration_reverted event"})
    from_ = fields.Nested(VersionRefSchema, data_key="from", attribute="from")
    to = fields.Nested(VersionRefSchema)


@blp.route("/<string(maxlength=200):key>/migrations")
class Migrations(MethodView):
    @requires(scopes.PROCESS_ADMIN)
    @blp.arguments(MigrationRequestSchema)
    @blp.response(200, MigrationPlanSchema)
    def post(self, body, key):
        """Dry run (the default) or run a migration of `key`'s running cases from version `from` to `to`.
        A dry run gives every running case of the source version its verdict: migratable, or why not
        (`reasons`, in Chinese and English). A run (`dry_run: false`) moves each migratable case in its own
        transaction with a `migrated` history event; cases it could not move say why, and running it again
        picks up only what is left."""
        migrations = current_engine().migrations
        args = (key, body["from_version"], body["to_version"], body["mapping"])
        if body["dry_run"]:
            plan = migrations.plan(*args, case_ids=body["case_ids"], clock=current_clock())
        else:
            plan = migrations.run(*args, case_ids=body["case_ids"], actor=current_principal().user,
                                  role=scopes.PROCESS_ADMIN, clock=current_clock())
        return plan.as_dict()


@blp.route("/<string(maxlength=200):key>/migrations/revert")
class MigrationRevert(MethodView):
    @requires(scopes.PROCESS_ADMIN)
    @blp.arguments(RevertRequestSchema)
    @blp.response(200, RevertSchema)
    def post(self, body, key):
        """Put one case back on the version it was migrated from, if nothing happened to it since."""
        migrations = current_engine().migrations
        return migrations.revert(body["case_id"], actor=current_principal().user, role=scopes.PROCESS_ADMIN,
                                 clock=current_clock(), key=key)
