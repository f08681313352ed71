"""Plan, run and revert migrations of running cases between two versions of a definition.

A plan (dry run) reads every running case of the source version once and returns a verdict per case. A
run moves each migratable case in its own transaction, judging it again on the state it has then: a case
that moved on since the plan is re-checked, never moved blind, and one changed by a concurrent command
loses nothing (one of the two commands wins on the case's revision, the other is told so). Cases moved
leave the source version, so a second run picks up only what is left. A revert puts a case back while
nothing has happened to it since its move.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState

from rules.task_lifecycle import OPEN_STATES

from engine.cases.commands import CaseService
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import Conflict, InvalidCommand, NotFound
from engine.migration import align as A
from engine.migration.commands import apply_migration, apply_revert, version_of
from engine.migration.moves import MoveRefused
from engine.migration.verdicts import Verdict, facts_from_state, facts_from_workflow, judge, reason
from engine.store.models import Case, CaseMigration, HumanTask, Timer

STREAM_BATCH = 500


@dataclass
class MigrationPlan:
    """The verdicts of a dry run, or the outcomes of a run, as data."""

    key: str
    source: dict
    target: dict
    mapping: dict[str, str]
    dry_run: bool
    at: datetime
    verdicts: list[Verdict] = field(default_factory=list)

    def counts(self) -> dict:
        counts = {"cases": len(self.verdicts), "migratable": 0, "refused": 0, "migrated": 0, "skipped": 0,
                  "conflict": 0, "rechecked": 0, "reasons": {}}
        for v in self.verdicts:
            counts["migratable"] += v.migratable
            counts["refused"] += not v.migratable and v.outcome in ("planned", "refused")
            counts["migrated"] += v.outcome == "migrated"
            counts["skipped"] += v.outcome == "skipped"
            counts["conflict"] += v.outcome == "conflict"
            counts["rechecked"] += v.rechecked
            for r in v.reasons:
                counts["reasons"][r.code] = counts["reasons"].get(r.code, 0) + 1
        return counts

    def revisions(self) -> dict[int, int]:
        return {v.case_id: v.revision for v in self.verdicts}

    def as_dict(self) -> dict:
        return {"key": self.key, "from": self.source, "to": self.target, "mapping": self.mapping,
                "dry_run": self.dry_run, "at": self.at.isoformat(), "counts": self.counts(),
                "cases": [v.as_dict() for v in self.verdicts]}


class MigrationService:
    def __init__(self, sessions, readers, cases: CaseService, definitions, workers: int = 1):
        """`workers`: cases moved at once, each by its own thread and connection (PostgreSQL; SQLite has one
        writer, so one)."""
        self._sessions = sessions
        self._readers = readers
        self._cases = cases
        self._definitions = definitions
        self.workers = workers

    def _alignment(self, key: str, from_version: int, to_version: int, mapping) -> A.Alignment:
        for name, value in (("--from", from_version), ("--to", to_version)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidCommand(f"{name} must be a version number (1, 2, …), not {value!r}")
        if from_version == to_version:
            raise InvalidCommand(f"--from and --to are both version {from_version}; nothing to migrate")
        source = self._definitions.load(self._definitions.find(key, from_version).id)
        target = self._definitions.load(self._definitions.find(key, to_version).id)
        if source.lifecycle is not target.lifecycle:
            raise InvalidCommand(f"version {to_version} of {key} follows another status lifecycle "
                                 f"({target.lifecycle.NAME}, not {source.lifecycle.NAME}); its cases cannot move")
        return A.ALIGNMENTS.get(source, target, A.parse_mapping(mapping))

    # -- plan (dry run) -----------------------------------------------------------------------------

    def plan(self, key: str, from_version: int, to_version: int, mapping=None, *, clock: Clock = SYSTEM_CLOCK,
             case_ids: list[int] | None = None) -> MigrationPlan:
        """A verdict for every running case of `key` version `from_version`; nothing is written."""
        alignment = self._alignment(key, from_version, to_version, mapping)
        now = clock.now()
        plan = MigrationPlan(key, version_of(alignment.source), version_of(alignment.target), alignment.mapping,
                             True, now)
        source_id = alignment.source.info.id
        with self._readers() as session:
            extended: dict[int, set[str]] = {}
            for case_id, spiff_id in session.execute(
                    sa.select(HumanTask.case_id, HumanTask.spiff_task_id).join(Case, Case.id == HumanTask.case_id)
                    .where(Case.definition_id == source_id, Case.finished_at.is_(None),
                           HumanTask.extension_granted_days > 0, HumanTask.state.in_(sorted(OPEN_STATES)))):
                extended.setdefault(case_id, set()).add(spiff_id)
            query = (sa.select(Case.id, Case.revision, Case.status, Case.state)
                     .where(Case.definition_id == source_id, Case.finished_at.is_(None)).order_by(Case.id))
            if case_ids is not None:
                query = query.where(Case.id.in_(list(case_ids)))
            for case_id, revision, status, state in session.execute(
                    query.execution_options(yield_per=STREAM_BATCH)):
                facts, subprocesses = facts_from_state(state)
                plan.verdicts.append(judge(alignment, case_id, revision, status, facts, subprocesses, now,
                                           extended.get(case_id, set())))
        return plan

    # -- run ----------------------------------------------------------------------------------------

    def run(self, key: str, from_version: int, to_version: int, mapping=None, *, actor: str,
            role: str = "process_admin", clock: Clock = SYSTEM_CLOCK, plan: MigrationPlan | None = None,
            case_ids: list[int] | None = None, progress=None, workers: int | None = None) -> MigrationPlan:
        """Migrate every migratable running case of the source version (or only `case_ids`), each in its
        own transaction; returns each case's outcome. `plan`: the dry run this run follows — a case whose
        revision moved since is judged again (it always is) and reported as re-checked."""
        alignment = self._alignment(key, from_version, to_version, mapping)
        if plan is not None and (plan.source["definition_id"], plan.target["definition_id"], plan.mapping) != \
                (alignment.source.info.id, alignment.target.info.id, alignment.mapping):
            raise InvalidCommand("the plan given is for other versions or another mapping than this run")
        result = MigrationPlan(key, version_of(alignment.source), version_of(alignment.target), alignment.mapping,
                               False, clock.now())
        planned = plan.revisions() if plan is not None else {}
        with self._readers() as session:
            query = (sa.select(Case.id).where(Case.definition_id == alignment.source.info.id,
                                              Case.finished_at.is_(None)).order_by(Case.id))
            if case_ids is not None:
                query = query.where(Case.id.in_(list(case_ids)))
            ids = list(session.scalars(query))
        lock = threading.Lock()

        def one(case_id: int) -> Verdict:
            verdict = self.migrate_case(case_id, alignment, actor=actor, role=role, clock=clock)
            if case_id in planned and planned[case_id] != verdict.revision:
                verdict.rechecked = True
            with lock:
                result.verdicts.append(verdict)
                if progress is not None:
                    progress(len(result.verdicts), len(ids), verdict)
            return verdict

        workers = max(1, min(workers or self.workers, len(ids) or 1))
        if workers == 1:
            for case_id in ids:
                one(case_id)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="migrate") as pool:
                list(pool.map(one, ids))
        result.verdicts.sort(key=lambda v: v.case_id)
        return result

    def migrate_case(self, case_id: int, alignment: A.Alignment, *, actor: str, role: str,
                     clock: Clock = SYSTEM_CLOCK) -> Verdict:
        """Judge and, when it may, move one case, in one transaction."""
        cases = self._cases
        to = alignment.target.info.version
        outcome: dict = {}
        try:
            with cases.transaction() as session:
                # The case and its tasks in one statement (the case stays in the session for `_load`).
                rows = session.execute(sa.select(Case, HumanTask).outerjoin(HumanTask, HumanTask.case_id == Case.id)
                                       .where(Case.id == case_id).order_by(HumanTask.id)).all()
                if not rows:
                    raise NotFound(f"no case {case_id}")
                session.info["case"] = rows[0][0]
                run = cases._load(session, case_id, clock, [t for _, t in rows if t is not None])
                case = run.case
                verdict = Verdict(case.id, case.revision, case.status, False, outcome="skipped")
                outcome["verdict"] = verdict
                if case.definition_id != alignment.source.info.id:
                    now_on = self._definitions.load(case.definition_id).info.version
                    verdict.reasons.append(reason("not_on_source", None, to, str(now_on)))
                    return verdict
                if case.finished_at is not None:
                    verdict.reasons.append(reason("finished", None, to))
                    return verdict
                facts, subprocesses = facts_from_workflow(run.workflow)
                extended = {t.spiff_task_id for t in run.tasks if t.extension_granted_days and t.state in OPEN_STATES}
                verdict = judge(alignment, case.id, case.revision, case.status, facts, subprocesses, clock.now(),
                                extended)
                outcome["verdict"] = verdict
                if not verdict.migratable:
                    verdict.outcome = "refused"
                    cases._instances.put(case, run.workflow)   # judged, not changed
                    return verdict
                state_before, pending_before = case.state, dict(case.pending_timers or {})
                names_before = {t.spiff_task_id: (t.element_id, t.name) for t in run.tasks}
                armed = self._armed(session, case, run.tasks, alignment, facts)
                moved = apply_migration(cases, session, run, alignment, armed, actor=actor, role=role)
                renamed_timers = [[tid, old] for tid, (old, _, _) in moved.renamed.items() if tid in pending_before]
                for tid, (_, new, _) in moved.renamed.items():
                    if tid in pending_before:
                        session.execute(sa.update(Timer).where(Timer.case_id == case.id, Timer.spiff_task_id == tid,
                                                               Timer.state == "pending").values(element_id=new))
                session.add(CaseMigration(
                    case_id=case.id, seq=case.last_seq, from_definition_id=alignment.source.info.id,
                    to_definition_id=alignment.target.info.id, state_before=state_before,
                    pending_timers_before=pending_before,
                    tasks_before=[[tid, *names_before[tid]] for tid in sorted(moved.renamed) if tid in names_before],
                    timers_before=renamed_timers, migrated_at=clock.now(), migrated_by=actor))
                verdict.outcome = "migrated"
                outcome["run"] = run
        except MoveRefused as exc:
            verdict = outcome["verdict"]
            verdict.migratable, verdict.outcome = False, "refused"
            verdict.reasons.append(exc.reason)
            return verdict
        except Conflict:
            verdict = outcome.get("verdict") or Verdict(case_id, 0, "", False)
            verdict.migratable, verdict.outcome = False, "conflict"
            return verdict
        run = outcome.get("run")
        if run is not None:
            cases._instances.put(run.case, run.workflow)
        return outcome["verdict"]

    @staticmethod
    def _armed(session, case: Case, tasks, alignment: A.Alignment, facts) -> dict[str, datetime]:
        """When each waiting timer whose expression changed was armed, by element. A deadline on a task was
        armed by the command that offered the task (the row's time); any other timer: its row in the timer
        index."""
        by_id = {f.id: f for f in facts}
        offered = {t.spiff_task_id: t.created_at for t in tasks}
        found, wanted = {}, []
        for f in facts:
            if not (f.state & TaskState.WAITING and f.id in (case.pending_timers or {})
                    and any(c.kind == A.TIMER_EXPRESSION for c in alignment.changes.get(f.name, []))):
                continue
            hosts = [c for c in (by_id[f.parent].children if f.parent in by_id else ()) if c in offered]
            if hosts:
                found[f.name] = offered[hosts[0]]
            else:
                wanted.append(f.id)
        if not wanted:
            return found
        rows = session.execute(sa.select(Timer.element_id, Timer.created_at)
                               .where(Timer.case_id == case.id, Timer.state == "pending",
                                      Timer.spiff_task_id.in_(wanted)).order_by(Timer.id))
        return {**found, **{element: created for element, created in rows}}

    # -- revert -------------------------------------------------------------------------------------

    def revert(self, case_id: int, *, actor: str, role: str = "process_admin",
               clock: Clock = SYSTEM_CLOCK, key: str | None = None) -> dict:
        """Undo the case's latest migration, if nothing happened to the case since. `key`: the definition
        the caller means (a case of another definition is not found under it)."""
        cases = self._cases
        with cases.transaction() as session:
            case = session.get(Case, case_id)
            if case is None or (key is not None and case.process_key != key):
                raise NotFound(f"no case {case_id}" + (f" of {key}" if key else ""))
            row = session.scalars(sa.select(CaseMigration).where(CaseMigration.case_id == case_id,
                                                                 CaseMigration.reverted_seq.is_(None))
                                  .order_by(CaseMigration.id.desc()).limit(1)).first()
            run = cases._load(session, case_id, clock)
            if row is None:
                raise InvalidCommand(f"case {case_id} has no migration to revert")
            if run.case.last_seq != row.seq:
                raise InvalidCommand(f"case {case_id} moved on since its migration (event {row.seq}; it is at "
                                     f"event {run.case.last_seq} now); a migration is reverted only while nothing "
                                     "happened after it — migrate it back instead")
            source = self._definitions.load(row.from_definition_id)
            names = {tid: (element, name) for tid, element, name in row.tasks_before}
            came_from = run.loaded
            apply_revert(cases, session, run, source, row.state_before, names, row.seq, actor=actor, role=role,
                         clock=clock)
            for tid, element in row.timers_before:
                session.execute(sa.update(Timer).where(Timer.case_id == case_id, Timer.spiff_task_id == tid,
                                                       Timer.state == "pending").values(element_id=element))
            row.reverted_seq, row.reverted_at = run.case.last_seq, clock.now()
        cases._instances.put(run.case, run.workflow)
        return {"case_id": case_id, "reverted_seq": row.seq, "event_seq": run.case.last_seq,
                "from": version_of(came_from), "to": version_of(source)}

    def migrations(self, case_id: int) -> list[CaseMigration]:
        with self._readers() as session:
            if session.get(Case, case_id) is None:
                raise NotFound(f"no case {case_id}")
            return list(session.scalars(sa.select(CaseMigration).where(CaseMigration.case_id == case_id)
                                        .order_by(CaseMigration.id)))
