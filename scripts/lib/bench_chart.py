"""Latency charts of scripts/bench's open-loop runs (matplotlib; run by scripts/bench-chart).

    bench_chart.py OUT_DIR RESULTS.json [RESULTS.json ...]

One PNG per scenario, OUT_DIR/open-loop-<scenario>.png: the p50, p99 and p99.9 latency (log scale)
against the throughput achieved, one point per arrival rate (labelled with its share of the
closed-loop capacity), the closed-loop capacity as a vertical line and the scenario's latency goal
as a horizontal one; a scenario's "-reference" runs (pgbench --rate at the same arrival rates) add the
database's own p99 to its chart. Several results files are merged (e.g. runs at different rates).
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import FuncFormatter  # noqa: E402

# Scenario: (title, the closed-loop pair whose capacity the rates are fractions of, goal ms or None).
SCENARIOS = {
    "webhooks": ("webhooks: signed 1 KiB Stripe webhook answered", "webhooks", 25.0),
    "bookings": ("bookings: hold + booking answered", "bookings", 50.0),
    "saga": ("saga: hold, booking and webhook answered (client)", "saga", None),
    "saga-confirmation": ("saga: webhook received -> booking confirmed (SQL)", "saga", 100.0),
}
QUANTILES = [("p50", "o-"), ("p99", "s-"), ("p99.9", "^-")]
REFERENCE = "-reference"


def measured(points):
    """POINTS with a throughput, by throughput."""
    return sorted((p for p in points if p.get("throughput") is not None), key=lambda p: p["throughput"])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    runs, capacity, machine, commits = {}, {}, None, []
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        machine = machine or document.get("machine", {})
        commits.append(document.get("commit", "?"))
        for name, pair in document.get("pairs", {}).items():
            if isinstance(pair.get("ours"), (int, float)):
                capacity.setdefault(name, []).append(pair["ours"])
        for run in document.get("open_loop", []):
            runs.setdefault(run["scenario"], []).append(run)
    written = []
    for scenario, points in sorted(runs.items()):
        if scenario.endswith(REFERENCE):
            continue
        title, pair, goal = SCENARIOS.get(scenario, (scenario, scenario, None))
        points = measured(points)
        if not points:
            continue
        figure, axes = plt.subplots(figsize=(9, 5.4), dpi=100)
        for key, style in QUANTILES:
            xs = [p["throughput"] for p in points if p.get("latency_ms", {}).get(key) is not None]
            ys = [p["latency_ms"][key] for p in points if p.get("latency_ms", {}).get(key) is not None]
            axes.plot(xs, ys, style, label=key)
        reference = [p for p in measured(runs.get(scenario + REFERENCE, [])) if p.get("latency_ms", {}).get("p99") is not None]
        if reference:
            axes.plot([p["throughput"] for p in reference], [p["latency_ms"]["p99"] for p in reference], "x--", color="grey",
                      label="p99 of pgbench --rate, the reference transaction at the same rates")
        for p in points:
            top = p.get("latency_ms", {}).get("p99.9") or p.get("latency_ms", {}).get("p99")
            if top is not None and p.get("label"):
                axes.annotate(f"{float(p['label']) * 100:.0f}%", (p["throughput"], top), textcoords="offset points", xytext=(0, 6),
                              ha="center", fontsize=8)
        for value in capacity.get(pair, []):
            axes.axvline(value, color="grey", linestyle=":", linewidth=1)
        if capacity.get(pair):
            axes.plot([], [], color="grey", linestyle=":", label=f"closed-loop capacity ({max(capacity[pair]):.0f}/s)")
        if goal is not None:
            axes.axhline(goal, color="red", linestyle="--", linewidth=1, label=f"goal at 80%: p99 < {goal:.0f} ms")
        axes.set_yscale("log")
        # Plain milliseconds on the log axis (1, 2, 5, 10, ... rather than powers of ten).
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if str(f"{value:g}")[0] in "25" else ""))
        axes.set_xlabel("throughput achieved (per second)")
        axes.set_ylabel("latency (ms, log scale)")
        axes.set_title(title, fontsize=11)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8, loc="upper left")
        cores = (machine or {}).get("cores", "?")
        figure.text(0.99, 0.01, f"open loop, fixed arrival rate; {cores} cores; commit {', '.join(sorted(set(commits)))}",
                    ha="right", fontsize=7, color="grey")
        figure.tight_layout()
        path = os.path.join(out_dir, f"open-loop-{scenario}.png")
        figure.savefig(path)
        plt.close(figure)
        written.append(path)
    if not written:
        sys.exit("no open-loop runs in " + ", ".join(sys.argv[2:]))
    for path in written:
        print(path)


if __name__ == "__main__":
    main()
