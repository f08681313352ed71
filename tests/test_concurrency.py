"""Two commands on one case at the same time, from real parallel worker processes on PostgreSQL:
exactly one wins, every other gets a clear error, nothing is half-applied."""
import multiprocessing as mp

import pytest

from engine.history import verify_chain
from tests.conftest import T0, grid_matter_upload

WORKERS = 6


def _contend(url, task_id, action, barrier, results):
    from engine.clock import FixedClock
    from engine.errors import Conflict, InvalidCommand
    from engine.service import Engine

    engine = Engine(url, migrate=False)
    clock = FixedClock(T0)
    barrier.wait()
    try:
        if action == "sign":
            engine.cases.sign_for(task_id, actor=f"pid{mp.current_process().pid}", role="responsible_unit",
                                  clock=clock)
        else:
            engine.cases.complete_task(task_id, {"verified": True, "within_authority": True},
                                       actor="w", role="grid_worker", clock=clock)
        results.put("ok")
    except Conflict:
        results.put("conflict")
    except InvalidCommand as exc:
        results.put(f"invalid: {exc}")
    except Exception as exc:  # anything else is a defect the assertion below reports
        results.put(f"unexpected {type(exc).__name__}: {exc}")
    finally:
        engine.close()


def _race(url, task_id, action):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(url, task_id, action, barrier, results)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return outcomes


@pytest.mark.parametrize("action", ["complete", "sign"])
def test_parallel_commands_on_one_case_one_wins(pg_url, action, clock):
    from engine.models import HistoryEvent
    from engine.service import Engine

    engine = Engine(pg_url)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    case_id = engine.cases.start("grid_matter", {"title": "t", "grid_code": "g"}, actor="w", role="grid_worker",
                                 clock=clock)
    task = engine.queries.tasks(case_id=case_id)[0]
    if action == "sign":
        engine.cases.complete_task(task.id, {"verified": True, "within_authority": False}, actor="w",
                                   role="grid_worker", clock=clock)
        agency = engine.queries.tasks(case_id=case_id)[0]
        engine.cases.complete_task(agency.id, {"decision": "file"}, actor="a", role="grid_agency", clock=clock)
        dispatch = engine.queries.tasks(case_id=case_id)[0]
        engine.cases.complete_task(dispatch.id, {"unit": "U", "handling_days": 3}, actor="a", role="grid_agency",
                                   clock=clock)
        task = engine.queries.tasks(case_id=case_id)[0]
        assert task.element_id == "handle"

    outcomes = _race(pg_url, task.id, action)

    assert outcomes.count("ok") == 1, outcomes
    losers = [o for o in outcomes if o != "ok"]
    assert all(o == "conflict" or o.startswith("invalid:") for o in losers), losers
    history = engine.queries.history(case_id)
    command = "sign_for" if action == "sign" else "complete"
    assert [e.command for e in history].count(command) == 1
    with engine.sessions() as s:
        events = s.query(HistoryEvent).filter_by(case_id=case_id).order_by(HistoryEvent.seq).all()
        assert verify_chain(case_id, events) is None
    engine.close()
