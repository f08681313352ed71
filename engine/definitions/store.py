"""Versioned process definitions: deploy (idempotent by content hash), list, and load pinned versions."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from engine.definitions import bundle as bundles
from engine.definitions import canonical
from engine.definitions.bundle import Bundle
from engine.definitions.problems import DefinitionRejected, Problem
from engine.definitions.reading import NS
from engine.definitions.problems import problem
from engine.clock import Clock
from engine.definitions.diff import DefinitionDiff, compare_versions
from engine.errors import Conflict, InvalidCommand, NotFound
from engine.store.models import Case, Definition


@dataclass(frozen=True)
class DeployOutcome:
    key: str
    version: int
    content_hash: str
    created: bool
    # new (first version), changed, drawing (only the diagram changed: cases behave the same), unchanged
    change: str = ""
    kind: str = "process"

    def __str__(self) -> str:
        verb = "deployed as" if self.created else "unchanged, still"
        what = "decision " if self.kind == "decision" else ""
        note = " — only the drawing changed; cases behave the same" if self.change == "drawing" else ""
        return f"{what}{self.key}: {verb} version {self.version} ({self.content_hash[:12]}){note}"


@dataclass(frozen=True)
class DefinitionInfo:
    id: int
    key: str
    version: int
    name: str
    content_hash: str
    deployed_at: datetime
    deployed_by: str
    kind: str = "process"


@dataclass(frozen=True)
class LoadedDefinition:
    info: DefinitionInfo
    spec: object
    subprocess_specs: dict
    elements: dict  # element id → task spec, for the properties the engine reads at run time
    lifecycle: ModuleType  # the status lifecycle its cases follow (rules/lifecycles)


def _info(row: Definition) -> DefinitionInfo:
    return DefinitionInfo(row.id, row.key, row.version, row.name, row.content_hash, row.deployed_at,
                          row.deployed_by, row.kind or "process")


class DefinitionStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers
        self._cache: dict[int, LoadedDefinition] = {}
        self._lock = threading.Lock()

    # -- deploy -------------------------------------------------------------------------------------

    def check(self, uploads: dict[str, bytes]) -> list[Problem]:
        """Every problem a deploy of `uploads` would refuse, by file and element; nothing is stored.

        The same checks as `deploy`, against what is deployed now (called processes and decisions)."""
        try:
            self._prepare(uploads)
        except DefinitionRejected as exc:
            return exc.problems
        return []

    def deploy(self, uploads: dict[str, bytes], deployer: str, clock: Clock) -> list[DeployOutcome]:
        """Deploy every executable process in `uploads`, and every DMN file no uploaded process uses as a
        decision of its own; all or nothing."""
        built = self._prepare(uploads)
        with self._sessions() as session, session.begin():
            outcomes = [self._store(session, b, deployer, clock) for b in built]
            try:
                session.flush()
            except IntegrityError:
                raise Conflict("another deploy of the same definition ran at the same time; try again") from None
        return outcomes

    def _prepare(self, uploads: dict[str, bytes]) -> list[Bundle]:
        """The bundles `uploads` would deploy, each built and checked; DefinitionRejected lists every
        problem of every file."""
        if not uploads:
            raise DefinitionRejected([problem("", "", "nothing_to_deploy", "nothing to deploy", "没有可部署的文件")])
        texts, problems = {}, []
        for name, data in uploads.items():
            try:
                bundles.read_xml(name, data)
                texts[name] = data.decode("utf-8")
            except DefinitionRejected as exc:
                problems += exc.problems
            except UnicodeDecodeError:
                problems.append(problem(name, "", "not_utf8", "file is not UTF-8 text", "文件不是 UTF-8 文本"))
        if problems:
            raise DefinitionRejected(problems)
        with self._readers() as session:
            deployed = self._latest_rows(session)
        built = []
        for key, (files, kind) in self._bundle_files(texts, deployed).items():
            try:
                built.append(bundles.build(files, key, kind=kind))
            except DefinitionRejected as exc:
                problems += [p for p in exc.problems if p not in problems]
        if problems:
            raise DefinitionRejected(problems)
        return built

    def _store(self, session, built: Bundle, deployer: str, clock: Clock) -> DeployOutcome:
        latest = session.scalars(sa.select(Definition).where(Definition.key == built.key)
                                 .order_by(Definition.version.desc()).limit(1)).first()
        content_hash, diagram_hash = canonical.bundle_hash(built.files)
        if latest is not None:
            # Recomputed from the stored files, so versions deployed before canonical hashing compare too.
            latest_content, latest_diagram = canonical.bundle_hash(latest.files)
            if (latest_content, latest_diagram) == (content_hash, diagram_hash):
                return DeployOutcome(built.key, latest.version, latest.content_hash, created=False,
                                     change="unchanged", kind=latest.kind or "process")
            change = "drawing" if latest_content == content_hash else "changed"
        else:
            change = "new"
        version = 1 if latest is None else latest.version + 1
        session.add(Definition(key=built.key, version=version, name=built.name, content_hash=content_hash,
                               files=built.files, deployed_at=clock.now(), deployed_by=deployer, kind=built.kind))
        return DeployOutcome(built.key, version, content_hash, created=True, change=change, kind=built.kind)

    @staticmethod
    def _latest_rows(session) -> dict[str, dict[str, str]]:
        newest = sa.select(Definition.key, sa.func.max(Definition.version).label("v")).group_by(Definition.key)
        newest = newest.subquery()
        rows = session.execute(sa.select(Definition.key, Definition.files)
                               .join(newest, sa.and_(Definition.key == newest.c.key,
                                                     Definition.version == newest.c.v))).all()
        return {key: files for key, files in rows}

    @staticmethod
    def _bundle_files(texts: dict[str, str], deployed: dict[str, dict[str, str]]) \
            -> dict[str, tuple[dict[str, str], str]]:
        """For each executable process uploaded, its file plus the files it reaches through call
        activities and business rule tasks, from this upload first, else from what is deployed; for each
        decision of an uploaded DMN file that no uploaded process reaches, that file alone.
        {key: (files, kind)}."""
        roots = {name: bundles.read_xml(name, text.encode()) for name, text in texts.items()}
        providers: dict[str, tuple[str, str]] = {}
        for files in deployed.values():
            for name, text in files.items():
                for pid in _provided(bundles.read_xml(name, text.encode())):
                    providers.setdefault(pid, (name, text))
        for name, root in roots.items():  # the upload wins over what is deployed
            for pid in _provided(root):
                providers[pid] = (name, texts[name])
        result, problems, reached = {}, [], set()
        for name, root in roots.items():
            if not bundles.is_dmn(root) and not bundles.is_bpmn(root):
                problems += bundles.check_files({name: root})
            if bundles.is_dmn(root) or not bundles.is_bpmn(root):
                continue
            keys = bundles.executable_process_ids(root)
            if not keys:
                problems.append(problem(name, (root.xpath("//bpmn:process/@id", namespaces=NS) or [""])[0],
                                        "no_executable_process",
                                        "no executable process (isExecutable=\"true\"): mark the process to "
                                        "run as executable", "没有可执行的流程（isExecutable=\"true\"）：请把要运行的流程"
                                        "标记为可执行"))
                continue
            for key in keys:
                files, todo = {name: texts[name]}, [root]
                while todo:
                    for ref in _references(todo.pop()):
                        if ref in providers and providers[ref][0] not in files:
                            ref_name, ref_text = providers[ref]
                            files[ref_name] = ref_text
                            todo.append(bundles.read_xml(ref_name, ref_text.encode()))
                reached.update(files)
                result[key] = (files, "process")
        for name, root in roots.items():
            if not bundles.is_dmn(root) or name in reached:
                continue
            decisions = bundles.decision_ids(root)
            if not decisions:
                problems.append(problem(name, "", "no_decision", "the DMN file holds no decision",
                                        "该 DMN 文件中没有决策"))
            for key in decisions[:1]:   # one decision table per file; further ones are refused by the check
                result[key] = ({name: texts[name]}, "decision")
        if problems:
            raise DefinitionRejected(problems)
        return result

    # -- read ---------------------------------------------------------------------------------------

    def list(self, key: str | None = None) -> list[DefinitionInfo]:
        with self._readers() as session:
            query = sa.select(Definition).order_by(Definition.key, Definition.version)
            if key:
                query = query.where(Definition.key == key)
            return [_info(row) for row in session.scalars(query)]

    def case_counts(self, key: str | None = None) -> dict[int, tuple[int, int]]:
        """Definition id → (running, all) cases pinned to it: what a new version leaves on the old one."""
        with self._readers() as session:
            running = sa.func.sum(sa.case((Case.finished_at.is_(None), 1), else_=0))
            query = sa.select(Case.definition_id, running, sa.func.count()).group_by(Case.definition_id)
            if key:
                query = query.where(Case.process_key == key)
            return {did: (int(open_ or 0), int(total)) for did, open_, total in session.execute(query)}

    def find(self, key: str, version: int | None = None, session=None) -> DefinitionInfo:
        """The named version, or the latest; pass the command's `session` to read inside its transaction."""
        query = sa.select(Definition).where(Definition.key == key)
        query = query.where(Definition.version == version) if version else \
            query.order_by(Definition.version.desc()).limit(1)
        if session is not None:
            row = session.scalars(query).first()
        else:
            with self._readers() as own:
                row = own.scalars(query).first()
        if row is None:
            raise NotFound(f"no definition {key!r}" + (f" version {version}" if version else "") +
                           "; deploy it with `gridflow deploy FILE`")
        return _info(row)

    def files(self, definition_id: int) -> dict[str, str]:
        with self._readers() as session:
            row = session.get(Definition, definition_id)
            if row is None:
                raise NotFound(f"no definition with id {definition_id}")
            return dict(row.files)

    def compare(self, key: str, from_version: int, to_version: int) -> DefinitionDiff:
        """Element-by-element differences between two deployed versions (engine/definition_diff.py)."""
        return compare_versions(self, key, from_version, to_version)

    def load(self, definition_id: int) -> LoadedDefinition:
        """The parsed spec of one pinned version; parsed once per process, shared by every case on it."""
        loaded = self._cache.get(definition_id)
        if loaded is not None:
            return loaded
        with self._readers() as session:
            row = session.get(Definition, definition_id)
            if row is None:
                raise NotFound(f"no definition with id {definition_id}")
            info, files = _info(row), dict(row.files)
        if info.kind == "decision":
            raise InvalidCommand(f"{info.key!r} is a decision (DMN), not a process: call it from a business rule "
                                 "task of a process (spiffworkflow:calledDecisionId)")
        built = bundles.build(files, info.key)
        elements = {}
        for spec in [built.spec, *built.subprocess_specs.values()]:
            for ts in spec.task_specs.values():
                elements.setdefault(getattr(ts, "bpmn_id", None) or ts.name, ts)
        loaded = LoadedDefinition(info, built.spec, built.subprocess_specs, elements,
                                  bundles.lifecycle_of(built.spec))
        with self._lock:
            self._cache.setdefault(definition_id, loaded)
        return self._cache[definition_id]


def _provided(root) -> list[str]:
    if bundles.is_dmn(root):
        return [d.get("id") for d in root.iter("{*}decision") if d.get("id")]
    return root.xpath("//bpmn:process/@id", namespaces=NS)


def _references(root) -> list[str]:
    if bundles.is_dmn(root):
        return []
    called = root.xpath("//bpmn:callActivity/@calledElement", namespaces=NS)
    decisions = [t.strip() for t in root.xpath("//spiffworkflow:calledDecisionId/text()", namespaces=NS)]
    return called + decisions
