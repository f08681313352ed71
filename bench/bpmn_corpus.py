"""Deploy every BPMN/DMN file of a corpus (kept outside the repository) and tally what happens.

    python -m bench.bpmn_corpus /work/corpus [--timeout 10] [--list refused_unclear] [--json out.json]

Each file is deployed on its own into a fresh database (a copy of a migrated template) by a worker process,
so files do not see each other's processes and a file that hangs is cut off after --timeout seconds. Tallies:

- accepted: deployed, and for a file with an executable process a case started without error;
- refused_clear: every problem names the file and, unless it is about the whole file, the element, with a code;
- refused_unclear: some problem does not;
- runtime_failure: deployed, but starting a case failed;
- traceback: an exception other than a refusal or an engine error (a defect);
- hang: still running after --timeout seconds.

Also printed: how often each refusal code occurs, so the reasons can be read against
docs/process-conventions.md.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

SUFFIXES = (".bpmn", ".dmn", ".bpmn2")
# Problems about a whole file, which have no element to name.
FILE_LEVEL = frozenset({"file_too_large", "unsafe_xml", "malformed_xml", "not_utf8", "nothing_to_deploy",
                        "no_executable_process", "not_bpmn", "no_decision", "call_target_missing"})
# Run-time starts are reports: each names a grid in force in the sample registry, which the template holds.
GRID = "410702001001U001"
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
CATEGORIES = ("accepted", "refused_clear", "refused_unclear", "runtime_failure", "traceback", "hang")


def _clear(problem) -> bool:
    return bool(problem.file and problem.code and problem.en and problem.zh
                and (problem.element_id or problem.code in FILE_LEVEL))


def _executable(data: bytes) -> bytes:
    """The file with every process marked executable (--as-executable): most modelers' exports and test
    suites leave isExecutable unset or false, which a deploy refuses before it looks at anything else."""
    from lxml import etree
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        return data
    for process in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
        process.set("isExecutable", "true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


AS_EXECUTABLE = False


def _one(path: str, template: str, workdir: str) -> dict:
    from engine.clock import FixedClock
    from engine.definitions.bundle import DefinitionRejected
    from engine.errors import EngineError
    from engine.service import Engine

    db = os.path.join(workdir, "one.db")
    shutil.copyfile(template, db)
    engine = Engine(f"sqlite:///{db}", migrate=False)
    clock = FixedClock(T0)
    name = os.path.basename(path)
    try:
        data = Path(path).read_bytes()
        if AS_EXECUTABLE:
            data = _executable(data)
        try:
            problems = engine.definitions.check({name: data})
        except Exception:
            return {"category": "traceback", "detail": traceback.format_exc(limit=6)}
        if problems:
            unclear = [p for p in problems if not _clear(p)]
            return {"category": "refused_unclear" if unclear else "refused_clear",
                    "codes": sorted({p.code for p in problems}),
                    "detail": "; ".join(str(p) for p in (unclear or problems)[:3])}
        try:
            outcomes = engine.definitions.deploy({name: data}, "bench", clock)
        except DefinitionRejected as exc:
            return {"category": "traceback", "detail": f"check passed but deploy refused: {exc}"}
        except Exception:
            return {"category": "traceback", "detail": traceback.format_exc(limit=6)}
        for outcome in outcomes:
            if outcome.kind != "process":
                continue
            try:
                engine.cases.start(outcome.key, {"grid_code": GRID}, actor="bench", role="grid_worker", clock=clock)
            except EngineError as exc:
                return {"category": "runtime_failure", "detail": f"{outcome.key}: {exc}"}
            except Exception:
                return {"category": "traceback", "detail": traceback.format_exc(limit=6)}
        return {"category": "accepted", "detail": ", ".join(f"{o.kind} {o.key}" for o in outcomes)}
    finally:
        engine.close()


def _worker(jobs, results, template):
    workdir = tempfile.mkdtemp(prefix="corpus-")
    for path in iter(jobs.get, None):
        try:
            results.put((path, _one(path, template, workdir)))
        except Exception:
            results.put((path, {"category": "traceback", "detail": traceback.format_exc(limit=6)}))


def _template() -> str:
    """A migrated database holding the sample registry (grids in force, units), copied for each file."""
    from engine.clock import FixedClock
    from engine.service import Engine
    path = os.path.join(tempfile.mkdtemp(prefix="corpus-template-"), "template.db")
    engine = Engine(f"sqlite:///{path}")
    try:
        engine.registry.load_sample("bench", clock=FixedClock(T0))
    finally:
        engine.close()
    return path


def run(corpus: Path, timeout: float) -> dict[str, dict]:
    files = sorted(str(p) for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    template = _template()
    ctx = mp.get_context("fork")
    outcome: dict[str, dict] = {}

    def start():
        jobs, results = ctx.Queue(), ctx.Queue()
        process = ctx.Process(target=_worker, args=(jobs, results, template), daemon=True)
        process.start()
        return process, jobs, results

    process, jobs, results = start()
    for index, path in enumerate(files, 1):
        jobs.put(path)
        try:
            got, result = results.get(timeout=timeout)
            outcome[got] = result
        except Exception:   # queue.Empty: the file is still running after `timeout` seconds
            outcome[path] = {"category": "hang", "detail": f"still running after {timeout:g} s"}
            process.kill()
            process.join()
            process, jobs, results = start()
        if index % 100 == 0:
            print(f"  {index}/{len(files)}", file=sys.stderr)
    jobs.put(None)
    process.join(timeout=5)
    if process.is_alive():
        process.kill()
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    parser.add_argument("--list", action="append", default=[], choices=CATEGORIES,
                        help="print the files of this category with the first problems")
    parser.add_argument("--json", type=Path, help="write every file's result here")
    parser.add_argument("--as-executable", action="store_true",
                        help="mark every process executable first, to see how far the rest of each file gets")
    args = parser.parse_args(argv)
    global AS_EXECUTABLE
    AS_EXECUTABLE = args.as_executable
    started = time.perf_counter()
    outcome = run(args.corpus, args.timeout)
    elapsed = time.perf_counter() - started
    tally = Counter(r["category"] for r in outcome.values())
    print(f"{len(outcome)} files from {args.corpus} in {elapsed:.0f} s")
    for category in CATEGORIES:
        print(f"  {category:16} {tally.get(category, 0)}")
    by_source = {}
    for path, result in outcome.items():
        source = Path(path).relative_to(args.corpus).parts[0]
        by_source.setdefault(source, Counter())[result["category"]] += 1
    for source, counts in sorted(by_source.items()):
        print(f"  {source}: " + ", ".join(f"{c} {counts[c]}" for c in CATEGORIES if counts.get(c)))
    codes = Counter(code for r in outcome.values() for code in r.get("codes", ()))
    print("refusal codes (files): " + ", ".join(f"{c} {n}" for c, n in codes.most_common()))
    for category in args.list:
        print(f"\n== {category}")
        for path, result in sorted(outcome.items()):
            if result["category"] == category:
                print(f"{Path(path).relative_to(args.corpus)}\n    {result.get('detail', '')[:600]}")
    if args.json:
        args.json.write_text(json.dumps(outcome, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
