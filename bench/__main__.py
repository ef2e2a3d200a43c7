"""`python -m bench [--report] [names]`: run the benchmarks (all by default), each printing its
figures beside its peer's; with --report, write docs/benchmarks.md and its plots from the rows
they return (bench/report.py). BENCH_QUICK=1 makes every run short (bench/common.py)."""

import importlib
import sys
import traceback

ALL = ["queue", "http_poll", "heartbeat", "jobs", "lateness", "mesh", "redis_memory", "capacity"]


def main(argv: list[str]) -> int:
    report = "--report" in argv
    names = [a for a in argv if a != "--report"] or ALL
    rows: list[dict] = []
    failures: list[str] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        try:
            rows += module.run() or []
        except Exception:
            if not report:
                raise
            traceback.print_exc()  # the other benchmarks still run; the report names this one
            failures.append(name)
    if report:
        from bench import common
        from bench import report as writer

        path = writer.write(rows, common.SAMPLES, failures, common.SECTIONS)
        print(f"\nwrote {path.relative_to(common.ROOT)}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
