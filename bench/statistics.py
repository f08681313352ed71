"""Statistics benchmark: bulk-generated cases with realistic histories, the county dashboard, one figure for
one grid and month, and the command path with and without the statistics projection.

    python bench/statistics.py [--cases N] [--db URL] [--lifecycles N]

Generation writes rows straight into `cases` and `stat_facts` (in bulk: the commands would take hours for
this many cases), in the shapes the projection writes: per case a report, its filing, dispatch rounds,
sign-for, returns, extensions, overdue and suspension spans, feedback, checks, closing, follow-up,
reopening, duplicates. History rows are not generated: no figure reads them.
The county dashboard is every headline figure x every township x 12 months; one figure is 按期结案率 for one
grid and one month. The command path is bench/lifecycle.py's engine walk (9 commands per case), run
alternately with the projection on and off on the same loaded database.
"""
from __future__ import annotations

import argparse
import io
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from bench.lifecycle import BPMN, T0, Aborted, database, engine_lifecycle  # noqa: E402
from engine.access.scopes import Principal  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.service import Engine  # noqa: E402
from engine.statistics.figures import HEADLINE  # noqa: E402
from engine.store.models import StatFact  # noqa: E402

COUNTY = "410702"
TOWNSHIPS = [f"{COUNTY}{t:03d}" for t in range(1, 11)]
GRIDS = [f"{t}{c:03d}U{g:03d}" for t in TOWNSHIPS for c in range(1, 6) for g in range(1, 5)]
UNITS = [f"unit_{u:02d}" for u in range(30)]
CATEGORIES = ["民生事项服务", "安全隐患排查", "矛盾纠纷排查化解", "社会治安防控"]
YEAR_START = datetime(2025, 12, 31, 16, 0, tzinfo=timezone.utc)   # 2026-01-01 00:00 Beijing time
FACT_COLUMNS = ("case_id", "seq", "kind", "at", "period_at", "until", "grid_code", "unit", "worker", "category",
                "sub_category", "process", "round", "on_time", "amount", "n", "due_at", "rules")
CASE_COLUMNS = ("id", "definition_id", "process_key", "status", "grid_code", "unit", "title", "category", "state",
                "state_hash", "last_seq", "last_event_hash", "pending_timers", "revision", "created_at",
                "updated_at", "finished_at", "stat_worker", "stat_round", "stat_late", "stat_reworks")
H = timedelta(hours=1)
D = timedelta(days=1)
RULES = "time_limits=2026.1;calendar=1"


def generate(n: int, first_id: int, definition_id: int, rng: random.Random):
    """(case rows, fact rows) for n cases spread over 2026."""
    cases, facts = [], []
    now = datetime(2026, 12, 31, 8, 0, tzinfo=timezone.utc)
    for i in range(n):
        cid = first_id + i
        grid = rng.choice(GRIDS)
        worker = f"worker_{grid[-7:]}"
        category = rng.choice(CATEGORIES)
        t0 = YEAR_START + timedelta(days=rng.randrange(365), hours=1 + rng.random() * 8)
        seq = [0]
        status, unit, finished, rnd = "reported", None, None, 0
        late = False

        def fact(kind, at, period_at=None, until=None, on_time=None, amount=None, k=0, due=None, rules=None):
            seq[0] += 1
            facts.append((cid, seq[0], kind, at, period_at or at, until, grid, unit, worker, category, None,
                          "grid_matter:1", rnd, on_time, amount, k, due, rules))

        fact("reported", t0)
        roll = rng.random()
        filed_at = t0 + timedelta(minutes=rng.randrange(10, 600))
        if roll < 0.02:      # a duplicate, linked before dispatch
            fact("filed", filed_at, on_time=True, rules="calendar=1")
            fact("duplicate", filed_at + H)
            status, finished = "closed", filed_at + H
        elif roll < 0.10:
            fact("not_filed", filed_at)
            status, finished = "not_filed", filed_at
        else:
            fact("filed", filed_at, on_time=filed_at - t0 < timedelta(hours=8), amount=2.0, rules="calendar=1")
            if roll < 0.35:
                fact("self_resolved", filed_at + 3 * H)
                status, finished = "self_resolved", filed_at + 3 * H
            else:
                dispatched = filed_at + H
                rounds = 2 if rng.random() < 0.08 else 1
                for r in range(rounds):
                    rnd, unit = r + 1, rng.choice(UNITS)
                    due = dispatched + 3 * D
                    fact("dispatched", dispatched, due=due, rules=RULES)
                    status = "dispatched"
                    if r + 1 < rounds:
                        fact("returned", dispatched + 2 * H)
                        dispatched += 4 * H
                        continue
                    sign = rng.random()
                    if sign < 0.85:
                        fact("signed", dispatched + H * rng.random(), period_at=dispatched, on_time=True, rules=RULES)
                    elif sign < 0.95:
                        fact("signed", dispatched + D, period_at=dispatched, on_time=False, rules=RULES)
                    if rng.random() < 0.05:
                        fact("extension", dispatched + D, amount=2.0, k=1)
                        due += 2 * D
                    late = rng.random() < 0.2 or sign >= 0.95
                    if late and due < now:
                        span_end = None
                        fed = due + D * rng.randrange(1, 12) if rng.random() < 0.8 else None
                        if rng.random() < 0.5:
                            fact("explanation", due + D)
                        if rng.random() < 0.1:
                            suspended = due + 2 * D
                            if suspended < now:
                                span_end = suspended
                                seq[0] += 1
                                facts.append((cid, seq[0], "overdue", due, due, span_end, grid, unit, worker,
                                              category, None, "grid_matter:1", rnd, None, None, 0, None, None))
                                fact("suspended", suspended)
                                status = "suspended"
                                break
                        feedback = fed if fed is not None and fed < now else None
                        closed = feedback + D if feedback is not None and feedback + D < now else None
                        seq[0] += 1
                        facts.append((cid, seq[0], "overdue", due, due, closed, grid, unit, worker, category, None,
                                      "grid_matter:1", rnd, None, None, 0, None, None))
                    else:
                        feedback = dispatched + timedelta(hours=2 + rng.random() * 50)
                        feedback = feedback if feedback < due and feedback < now else None
                        closed = feedback + D if feedback is not None and feedback + D < now else None
                    status = "overdue" if late else "in_progress"
                    if feedback is None:
                        break
                    fact("feedback", feedback, on_time=not late, amount=round(rng.random() * 24, 2))
                    rework = rng.random() < 0.1
                    fact("check", feedback + 6 * H, on_time=not rework)
                    if rework:
                        fact("check", feedback + 20 * H, on_time=True)
                    status = "verifying"
                    if closed is None:
                        break
                    fact("closed", closed, on_time=not late, k=1 if rework else 0, amount=12.0)
                    status, finished = "closed", closed
                    if rng.random() < 0.6 and closed + D < now:
                        satisfied = rng.random() < 0.85
                        fact("follow_up", closed + D, on_time=satisfied)
                        status = "evaluated"
                        if not satisfied and rng.random() < 0.2:
                            fact("reopened", closed + D)
                            status, finished = "reopened", None
        cases.append((cid, definition_id, "grid_matter", status, grid, unit, "bench", category, "{}", "0" * 64,
                      seq[0], "0" * 64, "{}", 1, t0, finished or t0, finished, worker, rnd, late, 0))
    return cases, facts


def _iso(value):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def load(engine: Engine, n: int, batch: int = 20_000) -> float:
    """Insert n generated cases with their facts; returns seconds taken."""
    rng = random.Random(13)
    with engine.db.connect() as conn:
        definition_id = conn.execute(sa.text("SELECT max(id) FROM definitions")).scalar()
        first = (conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM cases")).scalar() or 0) + 1
    started = time.perf_counter()
    dialect = engine.db.dialect.name
    # As any bulk load: the facts' indexes are built once at the end instead of row by row.
    indexes = list(StatFact.__table__.indexes)
    with engine.db.begin() as conn:
        for index in indexes:
            index.drop(conn)
    for offset in range(0, n, batch):
        cases, facts = generate(min(batch, n - offset), first + offset, definition_id, rng)
        raw = engine.db.raw_connection()
        try:
            cur = raw.cursor()
            if dialect == "postgresql":
                for table, columns, rows in (("cases", CASE_COLUMNS, cases), ("stat_facts", FACT_COLUMNS, facts)):
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            else:
                cur.execute("PRAGMA cache_size = -400000")   # the indexes of a big load fit in memory

                def sqlite_value(v):
                    return v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ") \
                        if isinstance(v, datetime) else v
                for table, columns, rows in (("cases", CASE_COLUMNS, cases), ("stat_facts", FACT_COLUMNS, facts)):
                    cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                    f"({', '.join('?' * len(columns))})",
                                    [tuple(sqlite_value(v) for v in row) for row in rows])
            raw.commit()
        finally:
            raw.close()
        print(f"  {offset + min(batch, n - offset):,}/{n:,} cases loaded", file=sys.stderr, flush=True)
    with engine.db.begin() as conn:
        for index in indexes:
            index.create(conn)
    with engine.db.connect() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))"))
            conn.commit()
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE stat_facts"))
        else:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    return time.perf_counter() - started


def timed(func, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    return ordered[len(ordered) // 2], ordered[0], result


def command_path(engine: Engine, n: int) -> tuple[float, float]:
    """Mean ms per command with the statistics projection on and off, alternating case by case."""
    record = engine.statistics.record
    on, off = {k: [] for k in ("start", "complete", "sign", "message")}, {k: [] for k in ("start", "complete", "sign",
                                                                                        "message")}
    for i in range(n + 4):
        for side in ((True, False) if i % 2 else (False, True)):
            engine.cases.projections[:] = [record] if side else []
            target = on if side else off
            if i < 4:   # warm-up
                target = {k: [] for k in on}
            engine_lifecycle(engine, target)
    engine.cases.projections[:] = [record]

    def mean(times):
        values = [v for k in times for v in times[k]]
        return sum(values) / len(values) / 1e6
    return mean(on), mean(off)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file); PostgreSQL gets its own schema")
    parser.add_argument("--lifecycles", type=int, default=60, help="lifecycles per side for the command path")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with database(args.db) as url:
        engine = Engine(url)
        try:
            engine.definitions.deploy({BPMN.name: BPMN.read_bytes()}, "bench", FixedClock(T0))
            seconds = load(engine, args.cases)
            with engine.db.connect() as conn:
                facts = conn.execute(sa.text("SELECT count(*) FROM stat_facts")).scalar()
            label = engine.db.dialect.name
            print(f"\nstatistics benchmark on {label}: {args.cases:,} cases, {facts:,} facts, loaded in {seconds:.1f} s")
            auditor = Principal("bench", "auditor")
            as_of = datetime(2027, 1, 5, tzinfo=timezone.utc)

            def dashboard():
                return engine.statistics.report(auditor, period="month", start=date(2026, 1, 1), end=date(2027, 1, 1),
                                                group_by="township", as_of=as_of, figures=list(HEADLINE))

            median, best, rep = timed(dashboard, args.repeat)
            print(f"county dashboard ({len(HEADLINE)} headline figures x {len(TOWNSHIPS)} townships x 12 months, "
                  f"{len(rep['rows'])} rows): median {median:.0f} ms, best {best:.0f} ms   target < 1000 ms")
            total = next(r for r in rep["rows"] if r["group"] == "*" and r["period"] == "2026-06")["figures"]
            print(f"  e.g. 2026-06 county: 按期结案率 {total['closed_on_time_rate']['value']} "
                  f"({total['closed_on_time_rate']['numerator']}/{total['closed_on_time_rate']['denominator']}), "
                  f"超期未结 {total['overdue_open']['value']}, 上报 {total['reported']['value']}")
            grid = GRIDS[17]
            worker = Principal("bench", "grid_worker", grid_code=grid)

            def one_figure():
                return engine.statistics.report(worker, period="month", start=date(2026, 6, 1), end=date(2026, 7, 1),
                                                group_by="all", as_of=as_of, figures=["closed_on_time_rate"])

            median, best, _ = timed(one_figure, args.repeat * 4)
            print(f"one figure, one grid, one month (as that grid's worker): median {median:.1f} ms, "
                  f"best {best:.1f} ms   target < 50 ms")
            drill = total["closed_on_time_rate"]["drill"]["denominator"]
            median, best, page = timed(lambda: engine.statistics.cases(auditor, drill, per_page=50), args.repeat)
            print(f"drill-down: the {page.total:,} cases below that line, first page: median {median:.0f} ms")
            with_stats, without = command_path(engine, args.lifecycles)
            print(f"command path (bench/lifecycle.py walk, {args.lifecycles} lifecycles per side, on the loaded "
                  f"database): {with_stats:.3f} ms/command with the projection, {without:.3f} ms without: "
                  f"{(with_stats / without - 1) * 100:+.1f}%   target <= +5%")
        except Aborted as exc:
            print(f"ABORTED: {exc}", file=sys.stderr)
            return 1
        finally:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
