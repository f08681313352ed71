"""Two commands on one case at the same time, from real parallel worker processes on PostgreSQL:
exactly one wins, every other gets a clear error, nothing is half-applied."""
import multiprocessing as mp

import pytest

from engine.cases.history import verify_chain
from tests.conftest import T0, grid_matter_upload, registered

WORKERS = 6
ROUNDS = 16  # a race is probabilistic: each worker contends for several fresh cases in turn


def _contend(url, task_ids, action, barrier, results):
    from engine.clock import FixedClock
    from engine.errors import Conflict, InvalidCommand
    from engine.service import Engine

    engine = Engine(url, migrate=False)
    clock = FixedClock(T0)
    for task_id in task_ids:
        barrier.wait()
        try:
            if action == "sign":
                engine.cases.sign_for(task_id, actor="unit", role="responsible_unit", clock=clock)
            else:
                engine.cases.complete_task(task_id, {"verified": True, "within_authority": True},
                                           actor="w", role="grid_worker", clock=clock)
            outcome = "ok"
        except Conflict:
            outcome = "conflict"
        except InvalidCommand as exc:
            outcome = f"invalid: {exc}"
        except Exception as exc:  # anything else is a defect the assertion below reports
            outcome = f"unexpected {type(exc).__name__}: {exc}"
        results.put((task_id, outcome))
    engine.close()


def _race(url, task_ids, action):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(url, task_ids, action, barrier, results))
             for _ in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = {task_id: [] for task_id in task_ids}
    for _ in range(WORKERS * len(task_ids)):
        task_id, outcome = results.get(timeout=180)
        outcomes[task_id].append(outcome)
    for p in procs:
        p.join(timeout=60)
    return outcomes


def _prepare(engine, clock, action):
    case_id = engine.cases.start("grid_matter", {"title": "t", "grid_code": "410702001001U001", "sub_category": "road_lighting"}, actor="w", role="grid_worker",
                                 clock=clock)
    if action == "sign":
        steps = [({"verified": True, "within_authority": False}, "grid_worker"),
                 ({"decision": "file"}, "grid_agency"), ({"unit": "U", "handling_days": 3}, "grid_agency")]
        for data, role in steps:
            task = engine.queries.tasks(case_id=case_id)[0]
            engine.cases.complete_task(task.id, data, actor="a", role=role, clock=clock)
    task = engine.queries.tasks(case_id=case_id)[0]
    assert task.element_id == ("handle" if action == "sign" else "verify_register")
    return case_id, task.id


@pytest.mark.parametrize("action", ["complete", "sign"])
def test_parallel_commands_on_one_case_one_wins(pg_url, action, clock):
    from engine.store.models import HistoryEvent
    from engine.service import Engine

    engine = Engine(pg_url)
    registered(engine, clock)
    engine.definitions.deploy(grid_matter_upload(), "admin", clock)
    cases = dict(_prepare(engine, clock, action) for _ in range(ROUNDS))

    outcomes = _race(pg_url, list(cases.values()), action)

    command = "sign_for" if action == "sign" else "complete"
    for case_id, task_id in cases.items():
        results = outcomes[task_id]
        assert results.count("ok") == 1, results
        losers = [o for o in results if o != "ok"]
        assert all(o == "conflict" or o.startswith("invalid:") for o in losers), losers
        assert [e.command for e in engine.queries.history(case_id)].count(command) == 1
        with engine.sessions() as s:
            events = s.query(HistoryEvent).filter_by(case_id=case_id).order_by(HistoryEvent.seq).all()
            assert verify_chain(case_id, events) is None
    engine.close()
