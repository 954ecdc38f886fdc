"""The run's table, summary lines and results JSON."""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
from pathlib import Path

from .bench import Bench
from .pairs import Pair, Rate


def judge(goal: str, ours: float, theirs: float, ours_p99: float | None, paired: float | None = None) -> tuple[float, bool]:
    """The ratio (PAIRED when given, the rounds' median ratio: `Outcome.paired`; else ours/theirs), and
    whether GOAL is met: a ratio ("0.6": at least that), or absolute (">=N/s" with optional ",p99<M"
    in ms and ",ratio>=R")."""
    ratio = paired if paired is not None else (ours / theirs if theirs > 0 else 0.0)
    if not goal.startswith(">="):
        return ratio, ratio >= float(goal)
    first, *conditions = goal[2:].split(",")
    met = ours >= float(first.removesuffix("/s"))
    for condition in conditions:
        if condition.startswith("p99<"):
            met = met and ours_p99 is not None and ours_p99 < float(condition[4:])
        elif condition.startswith("ratio>="):
            met = met and ratio >= float(condition[7:])
    return ratio, met


@dataclasses.dataclass
class Outcome:
    """One pair's results: None for a side that failed to run."""

    pair: Pair
    ours: Rate | None
    theirs: Rate | None
    rounds: list[float] = dataclasses.field(default_factory=list)
    """For a pair that measured both sides more than once, alternately: each round's ours/theirs
    (`round_ratios`); empty otherwise."""

    @property
    def paired(self) -> float | None:
        """The median of `rounds`, which the table shows as the pair's ratio and the goals judge; None
        for a pair measured once."""
        return statistics.median(self.rounds) if self.rounds else None

    @property
    def of_medians(self) -> float | None:
        """Ours' median over theirs' median; None when a side failed."""
        if self.ours is None or self.theirs is None or self.theirs.per_second <= 0:
            return None
        return self.ours.per_second / self.theirs.per_second

    @property
    def ratio(self) -> float | None:
        """The pair's ratio: `paired` where the pair measured rounds, else `of_medians`."""
        of_medians = self.of_medians
        return None if of_medians is None else (self.paired if self.paired is not None else of_medians)


def number(value: float) -> str:
    """VALUE as the summary writes numbers: whole ones without a point, others to 6 decimals at most."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else number(value)


def _latency(rate: Rate | None) -> str:
    if rate is None or (rate.p50 is None and rate.p99 is None):
        return "n/a"
    return f"{_ms(rate.p50)}/{_ms(rate.p99)}"


ROW = "{:<10} {:>10} {:>10} {:>6} {:>17} {:>17} {:<28} {:<4} {:<11} {}"


def ratio_goal(pair: Pair, ratio: float | None) -> str:
    """Issue 19's ratio goal for PAIR and whether RATIO meets it (">=0.60 yes", ">=0.30 NO"); "-" for a
    pair without one, "n/a" met when a side failed to run."""
    if pair.ratio_goal is None:
        return "-"
    met = "n/a" if ratio is None else ("yes" if ratio >= pair.ratio_goal else "NO")
    return f">={pair.ratio_goal:.2f} {met}"


def ratio_goals_line(judged: list[tuple[str, float | None, float]]) -> tuple[str, int]:
    """One line on issue 19's ratio goals over JUDGED (pair, ratio or None, goal): how many were met,
    and which were not, with their ratios; and the number met."""
    missed = [(name, ratio, goal) for name, ratio, goal in judged if ratio is None or ratio < goal]
    met = len(judged) - len(missed)
    line = f"issue 19's ratio goals in this run (judged in a full run): {met} of {len(judged)} met"
    if missed:
        line += "; not met: " + ", ".join(f"{name} {'n/a' if ratio is None else f'{ratio:.2f}'} (goal {goal:.2f})" for name, ratio, goal in missed)
    return line, met


def table(bench: Bench, outcomes: list[Outcome], heading: str) -> None:
    """Prints the table and appends each pair's summary lines."""
    print()
    print(heading)
    print(ROW.format("PAIR", "OURS/s", "THEIRS/s", "RATIO", "OURS p50/p99 ms", "THEIRS p50/p99 ms", "GOAL", "MET", "RATIO GOAL", "REFERENCE"))
    judged: list[tuple[str, float | None, float]] = []
    for outcome in outcomes:
        pair, ours, theirs = outcome.pair, outcome.ours, outcome.theirs
        ratio: float | None = None
        if ours is not None and theirs is not None:
            ratio, met = judge(pair.goal, ours.per_second, theirs.per_second, ours.p99, outcome.paired)
            shown = (f"{ours.per_second:.0f}", f"{theirs.per_second:.0f}", f"{ratio:.2f}", "yes" if met else "NO")
        else:
            shown = ("n/a" if ours is None else f"{ours.per_second:.0f}", "n/a" if theirs is None else f"{theirs.per_second:.0f}", "n/a", "n/a")
        # The goals include the same run's checks (no double hold, every delivery once, ...) and any
        # further condition of the pair's (the slow-endpoint run, the payout's memory and growth).
        if (pair.check is not None and pair.check != "ok") or pair.goal_also_needs is not None:
            shown = (*shown[:3], "NO")
        goal = pair.goal if pair.goal.startswith(">=") else f">={pair.goal}"
        print(
            ROW.format(
                pair.name, shown[0], shown[1], shown[2], _latency(ours), _latency(theirs), goal, shown[3], ratio_goal(pair, ratio), pair.reference
            )
        )
        if pair.ratio_goal is not None:
            judged.append((pair.name, ratio, pair.ratio_goal))
        values: dict[str, object] = {
            f"{pair.name}_ours": "n/a" if ours is None else number(ours.per_second),
            f"{pair.name}_theirs": "n/a" if theirs is None else number(theirs.per_second),
            f"{pair.name}_ratio": shown[2],
        }
        if outcome.paired is not None and outcome.of_medians is not None:
            values[f"{pair.name}_ratio_of_medians"] = f"{outcome.of_medians:.2f}"
        if _latency(ours) != "n/a" or _latency(theirs) != "n/a":
            values |= {
                f"{pair.name}_ours_p50_ms": _ms(ours.p50 if ours else None),
                f"{pair.name}_ours_p99_ms": _ms(ours.p99 if ours else None),
                f"{pair.name}_theirs_p50_ms": _ms(theirs.p50 if theirs else None),
                f"{pair.name}_theirs_p99_ms": _ms(theirs.p99 if theirs else None),
            }
        if pair.check is not None:
            values[f"{pair.name}_check"] = pair.check
        if pair.ratio_goal is not None:
            values[f"{pair.name}_ratio_goal"] = number(pair.ratio_goal)
            values[f"{pair.name}_ratio_goal_met"] = ratio_goal(pair, ratio).split()[1]
        bench.add_summary(**values)
    if any(outcome.paired is not None for outcome in outcomes):
        print("RATIO of a pair measured in rounds (ours, theirs, ours, ...): the median of each round's ours/theirs")
    if judged:
        line, goals_met = ratio_goals_line(judged)
        print(line)
        bench.add_summary(ratio_goals_met=f"{goals_met}/{len(judged)}")


def results_tool(bench: Bench) -> list[str]:
    return [sys.executable, os.fspath(bench.root / "scripts" / "lib" / "bench_results.py")]


def open_loop_table(bench: Bench) -> None:
    """The open-loop runs (BENCH_DIR/open-loop.jsonl) with the latency goals at 80% of capacity."""
    runs = bench.dir / "open-loop.jsonl"
    if runs.exists() and runs.stat().st_size > 0:
        print()
        print(f"Open loop: fixed arrival rates, latency from each request's due time (coordinated omission corrected), nproc={os.cpu_count()}")
        sys.stdout.flush()
        subprocess.run([*results_tool(bench), "table", os.fspath(runs), "--summary", os.fspath(bench.summary)], check=True)


def write_results(root: Path, folder: Path, destination: Path, seconds: int) -> None:
    """The results JSON (the machine, the commit, FOLDER's summary and open-loop.jsonl) at DESTINATION."""
    commit = subprocess.run(
        ["git", "-C", os.fspath(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    destination.parent.mkdir(parents=True, exist_ok=True)
    tool = [sys.executable, os.fspath(root / "scripts" / "lib" / "bench_results.py")]
    command = [*tool, "json", os.fspath(folder / "summary"), os.fspath(folder / "open-loop.jsonl"), "--seconds", str(seconds)]
    command += ["--commit", commit or "unknown"]
    with destination.open("w", encoding="utf-8") as handle:
        subprocess.run(command, stdout=handle, check=True)
