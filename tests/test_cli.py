"""The command line as a user runs it: a real `gridflow` process on a fresh SQLite file."""
import json
import subprocess
import sys

import pytest

from tests.conftest import PROCESSES


def gridflow(tmp_path, *args, check=True):
    env = {"GRIDFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, env=env,
                            cwd=PROCESSES.parent, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_demo_runs_every_matter_to_its_end(tmp_path):
    out = gridflow(tmp_path, "demo").stdout
    assert "deployed as version 1" in out
    for status in ("status self_resolved", "status evaluated", "status not_filed"):
        assert status in out
    assert "returned 办理 Handle (油烟排放属生态环境部门职责" in out
    assert "dispatched → returned" in out and "returned → dispatched" in out
    again = gridflow(tmp_path, "demo").stdout
    assert "unchanged, still version 1" in again


def test_deploy_list_start_complete_show(tmp_path):
    assert "deployed as version 1" in gridflow(tmp_path, "deploy", str(PROCESSES / "grid_matter.bpmn")).stdout
    assert "unchanged" in gridflow(tmp_path, "deploy", str(PROCESSES / "grid_matter.bpmn")).stdout
    listing = gridflow(tmp_path, "definitions").stdout
    assert "grid_matter" in listing and "admin" in listing
    gridflow(tmp_path, "registry", "sample")   # a report names a grid in force
    started = gridflow(tmp_path, "case", "start", "grid_matter", "--data",
                       json.dumps({"title": "井盖缺失", "grid_code": "410702001001U001",
                                   "sub_category": "manhole_cover_missing"})).stdout
    assert "case 1" in started and "verify_register" in started
    tasks = gridflow(tmp_path, "tasks", "--role", "grid_worker").stdout
    assert "verify_register" in tasks
    done = gridflow(tmp_path, "task", "complete", "1", "--data",
                    json.dumps({"verified": True, "within_authority": False})).stdout
    assert "status escalated" in done and "accept_report" in done
    shown = gridflow(tmp_path, "case", "show", "1").stdout
    assert "reported → registered → escalated" in shown


@pytest.mark.parametrize("args,message", [
    (["task", "complete", "1", "--data", "{not json"], "not valid JSON"),
    (["task", "complete", "1", "--data", "[1]"], "must be a JSON object"),
    (["task", "complete", "99", "--data", "{}"], "no task 99"),
    (["case", "show", "42"], "no case 42"),
    (["case", "start", "nope"], "no definition 'nope'"),
    (["task", "complete", "1", "--data", '{"verified": "yes", "within_authority": true}'], "expected bool"),
])
def test_bad_input_gives_one_clear_line_and_no_traceback(tmp_path, args, message):
    gridflow(tmp_path, "deploy", str(PROCESSES / "grid_matter.bpmn"))
    gridflow(tmp_path, "registry", "sample")
    gridflow(tmp_path, "case", "start", "grid_matter", "--data", '{"title": "t", "grid_code": "410702001001U001"}')
    result = gridflow(tmp_path, *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "internal" not in result.stderr


def test_a_refused_deploy_names_file_and_element(tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_text((PROCESSES / "grid_matter.bpmn").read_text().replace(
        "level = next_level(level)", "level = level.__class__"))
    result = gridflow(tmp_path, "deploy", str(bad), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bad.bpmn [raise_level]" in result.stderr and "nothing was changed" in result.stderr
    assert "no definitions deployed" in gridflow(tmp_path, "definitions").stdout


def test_deadline_commands(tmp_path):
    gridflow(tmp_path, "demo")
    assert "due (CST)" in gridflow(tmp_path, "timers").stdout
    board = gridflow(tmp_path, "deadlines").stdout
    assert "no dispatched tasks" in board or "warning" in board
    assert "seeded from chinesecalendar" in gridflow(tmp_path, "calendar", "show").stdout
    assert "covers 2027" in gridflow(tmp_path, "calendar", "add-year", "2027", "--holidays", "2027-01-01").stdout
    bad = gridflow(tmp_path, "calendar", "add-year", "2028", "--holidays", "2028-02-30", check=False)
    assert bad.returncode == 2 and "not a date" in bad.stderr and "Traceback" not in bad.stderr
    # The demo's follow-up windows are long past by the real clock: the worker fires them once.
    assert "fired timers of" in gridflow(tmp_path, "worker", "--once").stdout
    assert "fired timers of 0 cases" in gridflow(tmp_path, "worker", "--once").stdout
