"""The city admission catalog (准入分类目录, 条例 §12), the negative list (负面清单, §14) and routing lookups
(分流交办) over HTTP: read by everyone signed in."""
from __future__ import annotations


from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from engine.execution.functions import routing, time_limits
from rules.catalog import cite, shipped_catalog
from rules.grid_codes import InvalidDivisionCode, InvalidGridCode
from rules.levels import LEVELS, UnknownLevel
from rules.negative_list import KINDS as NEGATIVE_KINDS
from rules.negative_list import shipped_negative_list
from rules.routing import NoRoute

from api.http.auth import requires
from api.http.errors import ApiError

# A grid code or a 6/9/12-digit division code (rules/grid_codes.py), as the spec promises.
AREA_PATTERN = r"^[0-9]{6}([0-9]{3}){0,2}$|^[0-9]{12}[A-Z][0-9]{3}$"

blp = Blueprint("catalog", __name__, url_prefix="/catalog",
                description="Admission catalog (准入分类目录), negative list (负面清单), routing (分流交办)")

class LimitSchema(Schema):
    urgency = fields.String(required=True)
    handling_limit = fields.Float(required=True)
    handling_unit = fields.String(required=True, metadata={"description": "working_days, working_hours, "
                                                                          "natural_hours"})
    sign_for_limit_hours = fields.Float(required=True)
    return_window_days = fields.Integer(required=True)
    closing_condition = fields.String(required=True)


class SubCategorySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    category = fields.String(required=True)
    time_limits = fields.List(fields.Nested(LimitSchema), required=True,
                              metadata={"description": "default limits (立结案标准) by urgency"})


class CategorySchema(Schema):
    name = fields.String(required=True)
    sub_categories = fields.List(fields.Nested(SubCategorySchema), required=True)


class CatalogSchema(Schema):
    version = fields.String(required=True)
    effective_from = fields.Date(required=True)
    time_limits_version = fields.String(required=True)
    categories = fields.List(fields.Nested(CategorySchema), required=True,
                             metadata={"description": "the nine kinds of 条例 §12, in its order"})


class RoutingRuleSchema(Schema):
    level = fields.String(required=True)
    area = fields.String(required=True, metadata={"description": "* or a division code"})
    lead_unit = fields.String(required=True)
    assisting_units = fields.List(fields.String(), required=True)
    row = fields.Integer(required=True, metadata={"description": "row in the routing sheet"})


class SubCategoryDetailSchema(SubCategorySchema):
    routing = fields.List(fields.Nested(RoutingRuleSchema), required=True)


class NegativeEntrySchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_name = fields.String(required=True)
    article = fields.String(required=True)
    citation = fields.String(required=True)


class NegativeListSchema(Schema):
    kinds = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                        metadata={"description": "kind codes refused whatever the entry (条例 §14)"})
    entries = fields.List(fields.Nested(NegativeEntrySchema), required=True)


class RouteArgs(Schema):
    sub_category = fields.String(required=True, validate=validate.OneOf(sorted(routing().sub_categories)),
                                 metadata={"description": "a sub-category of the routing table in force"})
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    area = fields.String(required=True, validate=validate.Regexp(AREA_PATTERN),
                         metadata={"description": "a grid code, or a county/township/community division code"})


class RouteUnitSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)


class RouteSchema(Schema):
    sub_category = fields.String(required=True)
    level_asked = fields.String(required=True)
    level = fields.String(required=True, metadata={"description": "the level whose rule applies"})
    escalate = fields.Boolean(required=True, metadata={
        "description": "the rule is above the level asked: escalate to that level's agency, which dispatches"})
    area = fields.String(required=True)
    lead_unit = fields.Nested(RouteUnitSchema, required=True)
    assisting_units = fields.List(fields.Nested(RouteUnitSchema), required=True)
    rule = fields.Nested(RoutingRuleSchema, required=True)
    table_version = fields.String(required=True)


@blp.route("")
class Catalog(MethodView):
    @requires()
    @blp.response(200, CatalogSchema)
    def get(self):
        """The city admission catalog: categories and sub-categories, each with its default time limits."""
        catalog = shipped_catalog()
        return {"version": catalog.version, "effective_from": catalog.effective_from,
                "time_limits_version": time_limits().version,
                "categories": [{"name": name, "sub_categories": [_sub_category(s) for s in subs]}
                               for name, subs in catalog.categories.items()]}


@blp.route("/sub-categories/<string(maxlength=100):code>")
class SubCategory(MethodView):
    @requires()
    @blp.response(200, SubCategoryDetailSchema)
    def get(self, code):
        """One sub-category: its time limits and the routing rules that send it to units."""
        sub = shipped_catalog().sub_categories.get(code)
        if sub is None:
            raise ApiError(404, "not_found", "准入分类目录中没有该事项",
                           f"{code!r} is not in the admission catalog {shipped_catalog().version}")
        return {**_sub_category(sub), "routing": [_rule(r) for r in routing().rules_for(code)]}


@blp.route("/negative-list")
class NegativeList(MethodView):
    @requires()
    @blp.response(200, NegativeListSchema)
    def get(self):
        """Matters that never go to the grid (条例 §14), refused at intake citing the article."""
        return {"kinds": dict(NEGATIVE_KINDS),
                "entries": [{"code": e.code, "name": e.name, "kind": e.kind, "kind_name": e.kind_name,
                             "article": e.article, "citation": cite(e.article)} for e in shipped_negative_list()]}


@blp.route("/routing")
class Routing(MethodView):
    @requires()
    @blp.arguments(RouteArgs, location="query", as_kwargs=True)
    @blp.response(200, RouteSchema)
    def get(self, sub_category, level, area):
        """Which unit leads and which assist for a sub-category, asked by an agency level, in a grid or
        division: the most specific area wins, and levels above answer what this one has no rule for."""
        table = routing()
        if sub_category not in table.sub_categories:
            raise ApiError(422, "unknown_sub_category", "路由表中没有该事项",
                           f"unknown sub-category {sub_category!r} in the routing table {table.version}")
        try:
            route = table.route(sub_category, level, area)
        except (InvalidGridCode, InvalidDivisionCode, UnknownLevel) as exc:
            raise ApiError(422, "invalid_area", "区域编码无效", str(exc),
                           {"query": {"area": getattr(exc, "problems", [str(exc)])}}) from None
        except NoRoute as exc:
            raise ApiError(404, "no_route", "没有可分流的责任单位", str(exc)) from None
        return {"sub_category": sub_category, "level_asked": level, "level": route.level,
                "escalate": route.level != level, "area": area, "lead_unit": _unit(table, route.lead_unit),
                "assisting_units": [_unit(table, u) for u in route.assisting_units], "rule": _rule(route.rule_row),
                "table_version": table.version}


# ---- helpers -------------------------------------------------------------------------------------------

def _sub_category(sub) -> dict:
    limits = [limit for limit in time_limits() if limit.sub_category == sub.code]
    return {"code": sub.code, "name": sub.name, "category": sub.category,
            "time_limits": [{"urgency": t.urgency, "handling_limit": t.handling_limit,
                             "handling_unit": t.handling_unit, "sign_for_limit_hours": t.sign_for_limit_hours,
                             "return_window_days": t.return_window_days, "closing_condition": t.closing_condition}
                            for t in limits]}


def _rule(rule) -> dict:
    return {"level": rule.level, "area": rule.area, "lead_unit": rule.lead_unit,
            "assisting_units": list(rule.assisting_units), "row": rule.row}


def _unit(table, code: str) -> dict:
    unit = table.units.get(code)
    return {"code": code, "name": unit.name if unit else code, "kind": unit.kind if unit else ""}
