from datetime import date, datetime, timezone

import pytest

from rules.catalog import REGULATION
from rules.negative_list import OnNegativeList
from rules.matter_list import (
    MatterList, MatterListError, MatterLists, NoMatterListInForce, NotOnMatterList, TemporaryAdmission, diff,
)

COUNTY, OTHER = "410702", "410703"
ARTICLE_13 = "未纳入清单的事项，有关部门不得要求网格员办理或者协助办理。网格员有权拒绝网格事项清单以外的工作。"
CAMPAIGN = TemporaryAdmission("fire_hazard", "冬季消防安全专项整治", date(2026, 3, 1))


def v1(**changes):
    fields = dict(county_code=COUNTY, version="2026.1", effective_from=date(2026, 1, 1),
                  sub_categories=["population_info_update", "road_lighting", "neighbour_dispute"],
                  temporary=[CAMPAIGN])
    return MatterList(**{**fields, **changes})


def v2():
    return MatterList(COUNTY, "2026.2", date(2026, 7, 1),
                      ["population_info_update", "neighbour_dispute", "fire_hazard", "rental_housing"])


def problems_of(**changes):
    with pytest.raises(MatterListError) as caught:
        v1(**changes)
    return caught.value.problems


@pytest.fixture
def lists():
    return MatterLists([v2(), v1(), MatterList(OTHER, "2026.1", date(2026, 1, 1), ["public_opinion"])])


# --- building a list --------------------------------------------------------------------------------------------

def test_a_valid_list(lists):
    listed = v1()
    assert listed.sub_categories == ("population_info_update", "road_lighting", "neighbour_dispute")
    assert listed.temporary == (CAMPAIGN,) and listed.catalog.version == "2026.1"
    assert listed == v1()


def test_every_entry_must_be_in_the_catalog():
    problems = problems_of(sub_categories=["road_lighting", "karaoke_noise"],
                           temporary=[TemporaryAdmission("snow_removal", "寒潮", date(2026, 2, 1))])
    assert problems == [
        "sub_categories: 'karaoke_noise' is not in the admission catalog (准入分类目录) 2026.1; "
        "a county list is drawn from it (条例第十三条)",
        "temporary: 'snow_removal' is not in the admission catalog (准入分类目录) 2026.1; "
        "a county list is drawn from it (条例第十三条)"]


@pytest.mark.parametrize("code", ["administrative_penalty_decision", "administrative_levy", "administrative_enforcement"])
def test_nothing_on_the_negative_list_is_ever_on_a_list(code):
    for changes in ({"sub_categories": ["road_lighting", code]},
                    {"temporary": [TemporaryAdmission(code, "上级部门要求", date(2026, 2, 1))]}):
        [problem] = problems_of(**changes)
        assert "negative list (负面清单)" in problem and f"{REGULATION}第十四条" in problem
        assert "不得纳入网格事项清单" in problem


def test_temporary_admissions_need_a_reason_and_an_expiry_after_the_start():
    problems = problems_of(temporary=[TemporaryAdmission("fire_hazard", "  ", date(2026, 1, 1)),
                                      TemporaryAdmission("wage_arrears", "春节前清欠", date(2025, 12, 1)),
                                      TemporaryAdmission("power_outage", "迎峰度夏", "2026-08-01")])
    assert problems == [
        "temporary: 'fire_hazard' needs a reason for admitting it temporarily",
        "temporary: 'fire_hazard' expires on 2026-01-01, which must be after the list's effective_from 2026-01-01",
        "temporary: 'wage_arrears' expires on 2025-12-01, which must be after the list's effective_from 2026-01-01",
        "temporary: 'power_outage' expires_on '2026-08-01' must be a date"]


def test_each_matter_is_on_a_list_once():
    problems = problems_of(sub_categories=["road_lighting", "road_lighting"],
                           temporary=[TemporaryAdmission("road_lighting", "r", date(2026, 2, 1)), CAMPAIGN, CAMPAIGN])
    assert problems == ["sub_categories: 'road_lighting' appears twice",
                        "temporary: 'road_lighting' is already on the list permanently; admit it one way only",
                        "temporary: 'fire_hazard' is already on the list"]


@pytest.mark.parametrize("changes, fragment", [
    ({"county_code": "4107"}, "not a 6-digit county-level division code"),
    ({"county_code": "410700"}, "ending in 00 is a city"),
    ({"version": " "}, "version must be a non-empty text"),
    ({"effective_from": datetime(2026, 1, 1, tzinfo=timezone.utc)}, "must be a date"),
    ({"sub_categories": "road_lighting"}, "not one text"),
    ({"sub_categories": [], "temporary": []}, "the list is empty"),
])
def test_the_list_itself_is_checked(changes, fragment):
    [problem] = problems_of(**changes)
    assert fragment in problem


def test_every_problem_is_reported_at_once():
    error_problems = problems_of(county_code="x", sub_categories=["nope", "administrative_levy"],
                                 temporary=[TemporaryAdmission("fire_hazard", "", date(2026, 2, 1))])
    assert len(error_problems) == 4


# --- what is assignable when ------------------------------------------------------------------------------------

def test_the_list_in_force_is_the_latest_that_has_started(lists):
    assert lists.current(COUNTY, date(2026, 1, 1)).version == "2026.1"
    assert lists.current(COUNTY, date(2026, 6, 30)).version == "2026.1"
    assert lists.current(COUNTY, date(2026, 7, 1)).version == "2026.2"
    assert [m.version for m in lists.versions(COUNTY)] == ["2026.1", "2026.2"]
    with pytest.raises(NoMatterListInForce, match="410702 has no grid matter list in force on 2025-12-31"):
        lists.current(COUNTY, date(2025, 12, 31))


def test_an_instant_counts_on_its_day_in_beijing(lists):
    # 2026-06-30 16:00 UTC is already 1 July in Beijing, when version 2 starts.
    assert lists.current(COUNTY, datetime(2026, 6, 30, 16, 0, tzinfo=timezone.utc)).version == "2026.2"
    with pytest.raises(ValueError, match="no time zone"):
        lists.current(COUNTY, datetime(2026, 6, 30, 16, 0))


def test_a_matter_on_the_list_is_assignable(lists):
    assert lists.check_assignable(COUNTY, "road_lighting", date(2026, 3, 5)).version == "2026.1"
    assert lists.check_assignable(OTHER, "public_opinion", date(2026, 3, 5)).version == "2026.1"


def test_a_matter_off_the_list_is_refused_citing_article_13(lists):
    with pytest.raises(NotOnMatterList) as caught:
        lists.check_assignable(COUNTY, "wage_arrears", date(2026, 3, 5))
    refused = caught.value
    assert (refused.county_code, refused.sub_category, refused.matter_list.version) == (
        COUNTY, "wage_arrears", "2026.1")
    message = str(refused)
    assert f"{REGULATION}第十三条" in message and ARTICLE_13 in message
    assert "county 410702, version 2026.1" in message and "拖欠农民工工资" in message
    assert "the worker may refuse it" in message


def test_each_county_has_its_own_list(lists):
    with pytest.raises(NotOnMatterList, match="county 410703"):
        lists.check_assignable(OTHER, "road_lighting", date(2026, 3, 5))


def test_a_county_without_a_list_in_force_may_assign_nothing(lists):
    with pytest.raises(NotOnMatterList, match="410702 has no grid matter list .* in force on 2025-12-31") as caught:
        lists.check_assignable(COUNTY, "road_lighting", date(2025, 12, 31))
    assert caught.value.matter_list is None and "第十三条" in str(caught.value)
    with pytest.raises(NotOnMatterList, match="410799"):
        lists.check_assignable("410799", "road_lighting", date(2026, 3, 5))


def test_a_temporary_admission_counts_until_it_expires(lists):
    assert lists.check_assignable(COUNTY, "fire_hazard", date(2026, 2, 28)).version == "2026.1"
    with pytest.raises(NotOnMatterList) as caught:
        lists.check_assignable(COUNTY, "fire_hazard", date(2026, 3, 1))
    assert caught.value.expired == CAMPAIGN
    assert "temporary admission, 冬季消防安全专项整治, expired on 2026-03-01" in str(caught.value)
    assert "第十三条" in str(caught.value)
    # Version 2 takes the matter on permanently.
    assert lists.check_assignable(COUNTY, "fire_hazard", date(2026, 7, 1)).version == "2026.2"


def test_a_removed_matter_is_no_longer_assignable(lists):
    lists.check_assignable(COUNTY, "road_lighting", date(2026, 6, 30))
    with pytest.raises(NotOnMatterList, match="version 2026.2"):
        lists.check_assignable(COUNTY, "road_lighting", date(2026, 7, 1))


def test_a_negative_matter_is_refused_citing_article_14(lists):
    with pytest.raises(OnNegativeList, match="第十四条"):
        lists.check_assignable(COUNTY, "administrative_compulsory_measure", date(2026, 3, 5))
    with pytest.raises(OnNegativeList, match="第十四条"):
        lists.check_assignable(COUNTY, "administrative_licensing", date(2025, 3, 5))


def test_a_list_admits_nothing_before_it_starts():
    assert not v2().admits("fire_hazard", date(2026, 6, 30)) and v2().admits("fire_hazard", date(2026, 7, 1))


def test_versions_of_a_county_must_be_distinct():
    with pytest.raises(MatterListError) as caught:
        MatterLists([v1(), v1(), v1(version="2026.1b"), v2()])
    assert caught.value.problems == ["county 410702 has version 2026.1 twice",
                                     "county 410702: versions 2026.1 and 2026.1b both take effect on 2026-01-01"]


# --- changes ----------------------------------------------------------------------------------------------------

def test_diff_lists_what_a_change_adds_and_removes():
    change = diff(v1(), v2())
    assert (change.county_code, change.old_version, change.new_version) == (COUNTY, "2026.1", "2026.2")
    assert change.added == ("fire_hazard", "rental_housing")
    assert change.removed == ("road_lighting",)
    assert change.temporary_added == () and change.temporary_removed == (CAMPAIGN,)
    assert change


def test_diff_of_equal_lists_is_empty_and_a_new_expiry_shows():
    assert not diff(v1(), v1(version="2026.1a"))
    later = TemporaryAdmission("fire_hazard", CAMPAIGN.reason, date(2026, 4, 1))
    change = diff(v1(), v1(version="2026.1a", temporary=[later]))
    assert (change.temporary_added, change.temporary_removed) == ((later,), (CAMPAIGN,))


def test_diff_is_within_one_county():
    with pytest.raises(ValueError, match="one county"):
        diff(v1(), v1(county_code=OTHER))
