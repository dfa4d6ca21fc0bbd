"""The benchmark's results: the median of its runs, as a JSON document, a printed table with each
floor and peer as a ratio to the project's figure, and a chart of latency against offered load."""
from __future__ import annotations

import json
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

NUMBER = (int, float)


def median_of(runs: list[Any]) -> Any:
    """The runs, merged: each number the median of its runs', lists element by element."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: median_of([run[key] for run in runs if key in run]) for key in first}
    if isinstance(first, list):
        return [median_of([run[i] for run in runs if i < len(run)]) for i in range(len(first))]
    if isinstance(first, NUMBER) and not isinstance(first, bool):
        finite = [v for v in runs if isinstance(v, NUMBER) and not math.isnan(v)]
        return statistics.median(finite) if finite else float("nan")
    return first


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"date": time.strftime("%Y-%m-%d"), "cpu": model, "cores": len(
        [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("processor")]),
        "python": platform.python_version()}


def write(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    path.write_text(json.dumps(result, indent=2, allow_nan=True) + "\n")
    return path


def chart(result: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no screen here
    import matplotlib.pyplot as plt

    points = result["median"]["latency"]
    offered = [p["offered_per_s"] for p in points]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for p, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^-")):
        axes.plot(offered, [point[f"{p}_ms"] for point in points], style, label=p)
    axes.set_xlabel("offered load (new applications per second)")
    axes.set_ylabel("submit → completed (ms)")
    axes.set_yscale("log")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    info = result["machine"]
    axes.set_title(f"arcserve-licensing end to end, {info['cores']} cores, {info['date']} "
                   f"(median of {result['runs']})", fontsize=9)
    figure.tight_layout()
    path = out / "latency.png"
    figure.savefig(path)
    plt.close(figure)
    return path


def _ratio(floor: float, ours: float) -> str:
    return f"{ours / floor:.2f}×" if floor and not math.isnan(floor) and not math.isnan(ours) else "—"


def table(result: dict[str, Any]) -> str:
    m = result["median"]
    sat, raw = m["saturation"], m["raw"]
    rows = [("figure", "project", "floor / peer", "project ÷ floor"), ("---", "---", "---", "---"),
            ("completed end to end, /s (HTTP, 64 at once)", f"{sat['completed_per_s']:.0f}",
             f"{raw['completed_per_s']:.0f} (raw pipeline)", _ratio(raw["completed_per_s"], sat["completed_per_s"])),
            ("completed end to end, /s (direct publishing)", f"{m['direct']['drained_per_s']:.0f}", "", "")]
    for concurrency, found in m["intake"].items():
        rows.append((f"intake alone, requests/s at {concurrency} concurrent", f"{found['requests_per_s']:.0f}",
                     "", f"p99 {found['p99_ms']:.0f} ms"))
    for point in m["latency"]:
        rows.append((f"submit → completed at {point['offered_per_s']:.0f}/s offered, p50 / p95 / p99 ms",
                     f"{point['p50_ms']:.0f} / {point['p95_ms']:.0f} / {point['p99_ms']:.0f}",
                     f"accepted {point['achieved_per_s']:.0f}/s, refused (503) {point.get('refused', 0):.0f}", ""))
    cpu = sat["cpu_ms_per_application"]
    rows.append(("CPU per application, whole machine, ms", f"{cpu['machine']:.1f}", "", ""))
    rows.append(("CPU per application, the services, ms",
                 " + ".join(f"{name} {cpu[name]:.1f}" for name in ("intake", "status", "license_issuer", "order_id")),
                 f"broker {cpu['broker']:.1f}, database {cpu['database']:.1f}", ""))
    rows.append(("peak RSS, MB", ", ".join(f"{n} {v:.0f}" for n, v in sat["peak_rss_mb"].items()), "", ""))
    per = sat["per_application"]
    rows.append(("per application: publishes, consumes, transactions",
                 f"{per['published']:.1f}, {per['consumed']:.1f}, {per['transactions']:.1f}",
                 "the raw pipeline does the same", ""))
    scale = m["scale"]
    for step in scale:
        rows.append((f"with {step['contracts']:,} contracts: completed /s (64 at once); p99 ms at 100/s",
                     f"{step['completed_per_s']:.0f}; {step['p99_ms_at_100_per_s']:.0f}", "",
                     f"{_ratio(scale[0]['completed_per_s'], step['completed_per_s'])} of {scale[0]['contracts']:,}'s"))
    backlog = m["backlog"]
    rows.append((f"a backlog of {backlog['queued']:,}: drained /s; peak RSS MB meanwhile",
                 f"{backlog['drained_per_s']:.0f}; " + ", ".join(f"{n} {v:.0f}" for n, v in backlog["peak_rss_mb"].items()),
                 "", ""))
    hops = m["hop"]
    for variant, hop in hops.items():
        if variant != "raw":
            rows.append((f"one hop, {variant}: messages/s (µs each)", f"{hop['per_second']:.0f} ({hop['us_per_message']:.0f})",
                         f"raw aio-pika {hops['raw']['per_second']:.0f} ({hops['raw']['us_per_message']:.0f})",
                         _ratio(hops["raw"]["per_second"], hop["per_second"])))
    return "\n".join(f"| {' | '.join(row)} |" for row in rows)
