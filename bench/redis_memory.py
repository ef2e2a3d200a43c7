"""Redis memory over time, with retention on: 200,000 jobs and 50,000 sessions created and
finished in rounds while the real retention sweep deletes what passed its retention, and Redis
`used_memory` sampled after each round. The measurement is the reliability test's own
(tests/reliability/test_retention_memory.py, which also asserts the target): this runs it and
reports the figures it writes (var/test-figures/retention_memory.json). No peer: the target is a
plateau (the last quarter of the samples grows < 5%).
"""

from __future__ import annotations

import json
import subprocess

from bench.common import BIN, ROOT, row

FIGURES = ROOT / "var" / "test-figures" / "retention_memory.json"


def run() -> list[dict]:
    FIGURES.unlink(missing_ok=True)
    test = "tests/reliability/test_retention_memory.py"
    argv = [str(BIN / "pytest"), test, "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if not FIGURES.exists():
        raise RuntimeError(f"the memory run wrote no figures:\n{done.stdout[-2000:]}")
    f = json.loads(FIGURES.read_text())
    quarters = ", ".join(f"{m / 1e6:.1f}" for m in f["used_memory_at_quarters"])
    growth = f["last_quarter_growth"]
    print(
        f"  {f['jobs']:,} jobs and {f['sessions']:,} sessions in {f['rounds']} rounds: "
        f"used_memory at each quarter {quarters} MB; last quarter grows {growth * 100:.1f}% "
        f"(target < 5%); {f['seconds']} s"
    )
    return [
        row(
            "Redis memory over time, retention on (the reliability test's run)",
            f"used_memory at each quarter: {quarters} MB; the last quarter grows "
            f"{growth * 100:.1f}%; {f['used_memory_after'] / 1e6:.1f} MB after the last sweep",
            target="with retention on, 200,000 jobs and 50,000 sessions created and finished: "
            "`used_memory` plateaus (the last quarter grows < 5%)",
            met=growth < 0.05 and done.returncode == 0,
        )
    ]
