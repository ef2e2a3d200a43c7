"""The benchmark report: `docs/benchmarks.md` (a table of every figure beside its peer's, the
date and the machine) and its plots (`docs/bench-fire-latency.png`, `docs/bench-lateness.png`),
from the rows the benchmarks return and the samples they leave in `bench.common.SAMPLES`.

`make bench` writes it (`python -m bench --report`); matplotlib comes from the `bench` extra."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
from pathlib import Path

from bench.common import QUICK, ROOT

DOCS = ROOT / "docs"
REPORT = DOCS / "benchmarks.md"
FIRE_PLOT = DOCS / "bench-fire-latency.png"
LATENESS_PLOT = DOCS / "bench-lateness.png"


def machine() -> str:
    """One line about where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    redis = ""
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        redis = ", " + " ".join(out.split()[:3])
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}{redis}"
    )


def _mark(met: bool | None) -> str:
    return "" if met is None else (" ✔" if met else " ✘")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> str:
    lines = [
        "| benchmark | ours | peer (same run) | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        target = r["target"] + _mark(r["met"]) if r["target"] != "—" else "—"
        cells = [r["benchmark"], r["ours"], r["peer"], r["ratio"], target]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def plots(samples: dict[str, list[float]]) -> list[Path]:
    """Histogram and CDF of fire latency (ours beside the bare Celery task) and of lateness;
    the PNGs written (a plot whose samples no benchmark left is skipped)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - make bench installs it
        raise RuntimeError("matplotlib is missing: pip install -e '.[bench]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    groups = [
        (FIRE_PLOT, "Fire latency: request -> process started", "fire overhead", "bare Celery"),
        (LATENESS_PLOT, "Fire lateness: child created - due time", "lateness", None),
    ]
    for path, title, first, second in groups:
        series = {
            name: values
            for name, values in samples.items()
            if values and (name.startswith(first) or (second and name.startswith(second)))
        }
        if not series:
            continue
        fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
        low = min(min(v) for v in series.values())
        high = max(max(v) for v in series.values())
        bins = [low + (high - low) * i / 50 for i in range(51)] if high > low else 10
        for name, values in series.items():
            ordered = sorted(values)
            hist.hist(ordered, bins=bins, alpha=0.55, label=f"{name} (n={len(ordered):,})")
            cdf.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=name)
        hist.set_xlabel("ms")
        hist.set_ylabel("count")
        hist.set_title("histogram")
        cdf.set_xlabel("ms")
        cdf.set_ylabel("fraction <= x")
        cdf.set_title("CDF")
        cdf.grid(alpha=0.3)
        for ax in (hist, cdf):
            ax.legend(fontsize=8)
        fig.suptitle(title + (" (BENCH_QUICK)" if QUICK else ""))
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


NOTES = ROOT / "bench" / "notes.md"


def write(
    rows: list[dict],
    samples: dict[str, list[float]],
    failures: list[str],
    sections: list[str] | None = None,
) -> Path:
    """Write docs/benchmarks.md and its plots; returns the report's path."""
    images = plots(samples)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = (
        "**Quick mode** (`BENCH_QUICK=1`: fewer rounds, samples and seconds) — these figures "
        "check the pipeline and are not comparable with a full run's."
        if QUICK
        else "Full run: medians of 3 rounds where a benchmark has rounds."
    )
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench --report`; `BENCH_QUICK=1 make bench` for a",
        "short run): every benchmark of `bench/` beside its peer measured in the same run —",
        "redis-benchmark, `GET /health` through the same gunicorn, a bare Celery task on the",
        "same broker, repowire 0.17.0 (the test dependency). Each module's docstring says what",
        "it measures and how. Do not edit by hand; run it again.",
        "",
        f"- Measured: {now}",
        f"- Machine: {machine()}. wrk, gunicorn (2 gthread workers x 16 threads, as the "
        "Procfile), Celery, Redis "
        "and the peers share these cores, so figures move between runs.",
        f"- {mode}",
        "",
        table(rows),
        "",
        "✔ target met, ✘ not met. Ratios are ours / peer unless they say “faster”. The target",
        "column is operations.md's performance table, word for word.",
        "",
    ]
    for section in sections or []:
        out += [section, ""]
    if NOTES.exists():  # written by hand: why a target is missed, and the profile that shows it
        out += [NOTES.read_text().strip(), ""]
    if failures:
        out += ["Benchmarks that failed in this run (no figures):", ""]
        out += [f"- `{name}`" for name in failures]
        out.append("")
    captions = {
        FIRE_PLOT: "Fire latency: `POST /jobs` of a no-op `shell` job to its executor started, "
        "beside a bare Celery task's enqueue to start (bench/jobs.py).",
        LATENESS_PLOT: "Fire lateness of recurring templates, spread over the hour and in one "
        "burst minute (bench/lateness.py).",
    }
    for image in images:
        out += [captions[image], "", f"![{image.stem}]({image.name})", ""]
    REPORT.write_text("\n".join(out))
    return REPORT
