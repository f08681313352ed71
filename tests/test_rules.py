import pytest

from rules import status
from rules import task_lifecycle as lifecycle
from rules.levels import LEVELS, UnknownLevel, next_level


@pytest.mark.parametrize("source,dest,trigger", [
    ("reported", "registered", "verify"),
    ("escalated", "dispatched", "dispatch"),
    ("dispatched", "in_progress", "sign_for"),
    ("dispatched", "returned", "return_"),
    ("returned", "dispatched", "dispatch"),
    ("in_progress", "overdue", "become_overdue"),
    ("overdue", "feedback_submitted", "submit_feedback"),
    ("verifying", "rework", "fail_check"),
    ("verifying", "closed", "close"),
    ("closed", "evaluated", "evaluate"),
    ("evaluated", "dispatched", "dispatch"),
])
def test_lawful_moves_go_through_the_machine(source, dest, trigger):
    assert status.move(source, dest) == trigger


@pytest.mark.parametrize("source,dest", [
    ("dispatched", "closed"),        # no feedback, no check
    ("reported", "dispatched"),      # not verified
    ("feedback_submitted", "closed"),  # not checked
    ("self_resolved", "escalated"),  # final
    ("not_filed", "dispatched"),
    ("cancelled", "reported"),
])
def test_unlawful_moves_are_refused(source, dest):
    assert not status.is_lawful(source, dest)
    with pytest.raises(status.UnlawfulMove, match=f"{source} → {dest}"):
        status.move(source, dest)


def test_a_matter_begins_as_reported_and_unknown_statuses_are_refused():
    assert status.move(None, "reported") is None
    with pytest.raises(status.UnlawfulMove):
        status.move(None, "dispatched")
    with pytest.raises(status.UnlawfulMove, match="unknown status"):
        status.move("reported", "teleported")


def test_staying_put_is_not_a_move():
    assert status.move("escalated", "escalated") is None


def test_final_statuses_have_no_way_out():
    for final in status.FINAL_STATUSES:
        assert not [m for m in status.lawful_moves() if m[0] == final]


def test_reason_is_required_for_not_filing_returning_and_cancelling():
    assert status.REASON_REQUIRED == {"not_filed", "returned", "cancelled"}


def test_task_lifecycle_sign_then_complete():
    state = lifecycle.apply("offered", "sign_for", sign_required=True)
    assert state == "signed_for"
    assert lifecycle.apply(state, "start", sign_required=True) == "in_progress"
    assert lifecycle.apply("in_progress", "complete", sign_required=True) == "completed"


def test_task_lifecycle_refusals_name_the_rule():
    with pytest.raises(lifecycle.TaskActionRefused, match="sign for the task"):
        lifecycle.apply("offered", "complete", sign_required=True)
    with pytest.raises(lifecycle.TaskActionRefused, match="needs a reason"):
        lifecycle.apply("offered", "return_", returnable=True, reason="  ")
    with pytest.raises(lifecycle.TaskActionRefused, match="cannot be returned"):
        lifecycle.apply("offered", "return_", returnable=False, reason="not ours")
    with pytest.raises(lifecycle.TaskActionRefused, match="cannot complete a task that is completed"):
        lifecycle.apply("completed", "complete")
    with pytest.raises(lifecycle.TaskActionRefused, match="not signed for"):
        lifecycle.apply("offered", "sign_for", sign_required=False)
    assert lifecycle.apply("offered", "return_", returnable=True, reason="不属本单位职责") == "returned"


def test_levels_go_up_one_at_a_time_and_stop_at_the_city():
    assert [next_level(level) for level in LEVELS] == ["township", "county", "city", "city"]
    with pytest.raises(UnknownLevel):
        next_level("province")
