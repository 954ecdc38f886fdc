"""How the harness reads the tools' output and judges a pair: the parts a wrong number would come from."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from benchkit import measure, metrics, openloop, pgbench
from benchkit.bench import BenchError
from benchkit.pairs import Pair, parse_ours
from benchkit.pairs.booking import EventPlan, place_script
from benchkit.pairs.core import PostgresPair
from benchkit.report import judge, number, ratio_goal, ratio_goals_line

ROOT = Path(__file__).resolve().parents[4]


class JudgeTests(unittest.TestCase):
    def test_a_ratio_goal_is_met_at_the_ratio_and_not_below(self) -> None:
        self.assertEqual(judge("0.60", 600, 1000, None), (0.6, True))
        ratio, met = judge("0.60", 599, 1000, None)
        self.assertAlmostEqual(ratio, 0.599)
        self.assertFalse(met)

    def test_an_absolute_goal_needs_the_rate_the_p99_and_the_ratio(self) -> None:
        goal = ">=4000/s,p99<25,ratio>=0.40"
        self.assertTrue(judge(goal, 4000, 10000, 24.9)[1])
        self.assertFalse(judge(goal, 3999, 5000, 10)[1], "rate below")
        self.assertFalse(judge(goal, 5000, 5000, 25)[1], "p99 at the limit")
        self.assertFalse(judge(goal, 5000, 5000, None)[1], "p99 unknown")
        self.assertFalse(judge(goal, 4000, 10001, 10)[1], "ratio below")

    def test_no_reference_gives_ratio_zero(self) -> None:
        self.assertEqual(judge("0.5", 100, 0, None), (0.0, False))

    def test_numbers_are_written_without_trailing_zeros(self) -> None:
        self.assertEqual([number(17234), number(44699.123456), number(0.5)], ["17234", "44699.123456", "0.5"])

    def test_issue_19s_ratio_goal_is_judged_on_the_exact_ratio(self) -> None:
        pair = PostgresPair()
        self.assertEqual(ratio_goal(pair, 0.6), ">=0.60 yes")
        self.assertEqual(ratio_goal(pair, 0.5999), ">=0.60 NO", "shown as 0.60, still below")
        self.assertEqual(ratio_goal(pair, None), ">=0.60 n/a")
        self.assertEqual(ratio_goal(Pair(), 0.9), "-")

    def test_the_ratio_goals_line_names_each_pair_that_missed(self) -> None:
        line, met = ratio_goals_line([("postgres", 0.72, 0.6), ("holds", 0.24, 0.3), ("saga", None, 0.6)])
        self.assertEqual(met, 1)
        self.assertIn("1 of 3 met", line)
        self.assertIn("holds 0.24 (goal 0.30)", line)
        self.assertIn("saga n/a (goal 0.60)", line)
        self.assertNotIn("postgres", line)
        self.assertEqual(ratio_goals_line([("redis", 0.9, 0.7)])[0][-10:], "1 of 1 met")


class AloneTests(unittest.TestCase):
    def test_within_ten_percent_either_way(self) -> None:
        from benchkit.__main__ import compare_alone

        self.assertEqual(compare_alone(0.55, 0.50)[1], "yes")
        self.assertEqual(compare_alone(0.45, 0.50)[1], "yes")
        self.assertEqual(compare_alone(0.56, 0.50)[1], "NO")
        change, within = compare_alone(0.40, 0.50)
        self.assertAlmostEqual(change, -0.2)
        self.assertEqual(within, "NO")

    def test_alone_runs_median_spread_and_noise(self) -> None:
        from benchkit.__main__ import compare_alone_runs

        # One run alone: its ratio, no spread, so any change beyond 10% is beyond it.
        one = compare_alone_runs(0.60, [0.50])
        assert one is not None
        self.assertEqual((one.alone, one.within, one.spread, one.beyond_spread), (0.50, "NO", 0.0, "yes"))
        # Two runs alone 50% apart: together 20% above their median is outside 10% but inside that noise.
        noisy = compare_alone_runs(0.60, [0.40, 0.60])
        assert noisy is not None
        self.assertAlmostEqual(noisy.alone, 0.50)
        self.assertAlmostEqual(noisy.change, 0.20)
        self.assertAlmostEqual(noisy.spread, 0.50)
        self.assertEqual((noisy.within, noisy.beyond_spread), ("NO", "NO"))
        # Three steady runs: the median, and a 30% drop together is beyond their 4% spread.
        steady = compare_alone_runs(0.35, [0.51, 0.50, 0.52])
        assert steady is not None
        self.assertAlmostEqual(steady.alone, 0.51)
        self.assertEqual((steady.within, steady.beyond_spread), ("NO", "yes"))
        # Within 10% is never called beyond the noise.
        within = compare_alone_runs(0.52, [0.50, 0.50])
        assert within is not None
        self.assertEqual((within.within, within.beyond_spread), ("yes", "NO"))
        # A missing ratio anywhere: no comparison.
        self.assertIsNone(compare_alone_runs(None, [0.5]))
        self.assertIsNone(compare_alone_runs(0.5, [0.5, None]))
        self.assertIsNone(compare_alone_runs(0.5, []))


class RepeatedMeasurementTests(unittest.TestCase):
    def test_the_ratio_of_rounds_is_the_median_of_each_rounds_ratio(self) -> None:
        from benchkit.bench import round_ratios
        from benchkit.pairs import Rate
        from benchkit.report import Outcome

        # The eighth session's SELECT 1 alone: the machine slowed in rounds 4 and 5, both sides with it.
        ours = [34610, 34478, 34497, 31501, 26140]
        theirs = [29754.6, 32640.3, 29139.7, 27998.6, 27596.3]
        rounds = round_ratios(ours, theirs)
        self.assertEqual(len(rounds), 5)
        outcome = Outcome(PostgresPair(), Rate(34478), Rate(29139.7), rounds)
        assert outcome.paired is not None and outcome.of_medians is not None
        self.assertAlmostEqual(outcome.paired, 31501 / 27998.6)
        self.assertAlmostEqual(outcome.of_medians, 34478 / 29139.7, msg="the medians' ratio takes a fast and a slow round")
        self.assertEqual(round_ratios([100], [50]), [], "one round: no rounds to take a median of")
        self.assertEqual(round_ratios([100, 90, 80], [50, 45]), [], "rounds that do not pair up")
        self.assertEqual(round_ratios([100, 90], [50, 0]), [], "a reference that measured nothing")
        self.assertEqual(Outcome(PostgresPair(), Rate(1), Rate(1), round_ratios([100, 90], [50, 30])).paired, 2.5, "even: the middle two's mean")

    def test_the_outcome_ratio_is_the_rounds_one_and_the_goals_judge_it(self) -> None:
        from benchkit.pairs import Rate
        from benchkit.report import Outcome

        rounds = Outcome(PostgresPair(), Rate(600), Rate(1000), [0.55, 0.58, 0.61])
        self.assertEqual((rounds.ratio, rounds.of_medians), (0.58, 0.6))
        once = Outcome(PostgresPair(), Rate(600), Rate(1000))
        self.assertEqual((once.ratio, once.paired), (0.6, None))
        self.assertIsNone(Outcome(PostgresPair(), None, Rate(1000), [0.58, 0.58]).ratio, "a failed side has no ratio")
        self.assertEqual(judge("0.60", 600, 1000, None, 0.58), (0.58, False))
        self.assertEqual(judge(">=500/s,ratio>=0.59", 600, 1000, None, 0.58), (0.58, False))

    def test_the_rank_sum_p_is_exact_and_small_only_when_the_rounds_separate(self) -> None:
        from benchkit.bench import rank_sum_p

        # Five against five wholly apart: 2 of the 252 splits are that far apart.
        self.assertAlmostEqual(rank_sum_p([1.5, 1.6, 1.7, 1.8, 1.9], [1.0, 1.1, 1.2, 1.3, 1.4]) or 0, 2 / 252)
        # Three against three can never be below 2 of 20.
        self.assertAlmostEqual(rank_sum_p([3, 4, 5], [0, 1, 2]) or 0, 0.1)
        # Interleaved: nothing to tell apart.
        self.assertEqual(rank_sum_p([1, 3, 5], [2, 4, 6]), 0.7)
        self.assertEqual(rank_sum_p([1.0, 1.0], [1.0, 1.0]), 1.0, "ties count a half")
        # The ninth session's redis rounds, together against alone: +12%, yet they overlap.
        p = rank_sum_p([1.52, 1.32, 1.40, 1.39, 1.45], [1.23, 1.23, 1.45, 1.61, 1.25])
        assert p is not None
        self.assertGreater(p, 0.05)
        self.assertIsNone(rank_sum_p([1.0], [1.0, 2.0]), "a side of one")

    def test_the_table_alone_judges_the_rounds_ratio_and_shows_the_medians_change_and_p(self) -> None:
        import contextlib
        import io

        from benchkit.__main__ import Alone, Executables, RunResult, alone_table
        from benchkit.pairs import Rate
        from benchkit.report import Outcome
        from benchkit.servers import Servers

        # Together: rounds 1.40 median, medians' ratio 1.30; alone: rounds 1.25 median, medians' 1.28.
        together = RunResult(0, [Outcome(PostgresPair(), Rate(130), Rate(100), [1.52, 1.32, 1.40, 1.39, 1.45])], "", "")
        alone = Alone(Servers(ROOT), 10, Executables(None, {}))
        alone.ratios, alone.of_medians = {"postgres": [1.25]}, {"postgres": [1.28]}
        alone.rounds = {"postgres": [1.23, 1.23, 1.45, 1.61, 1.25]}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            summary = alone_table(together, alone)
        self.assertIn("bench_postgres_alone_ratio=1.2500\nbench_postgres_alone_within_10pct=NO", summary)
        self.assertIn("bench_postgres_alone_change_of_medians=0.0156\nbench_postgres_alone_within_10pct_of_medians=yes", summary)
        self.assertIn("bench_postgres_alone_rounds_p=0.4603", summary)
        self.assertIn("postgres +12% (rounds overlap, p 0.460)", printed.getvalue())

    def test_the_median_measurement_counts_with_the_counters_it_wrote(self) -> None:
        from benchkit.__main__ import Side, median_side
        from benchkit.pairs import GroupPair, Rate, ServiceGroup

        group = ServiceGroup()
        group.measurements = {"saga.cpu": "written last", "other": "kept"}
        pair: GroupPair[ServiceGroup] = GroupPair(group)
        pair.name = "saga"
        sides = [Side(Rate(1000, 40, 90), {"saga.cpu": "first"}), Side(Rate(890, 46, 117), {"saga.cpu": "second"})]
        sides.append(Side(Rate(1070, 39, 86), {"saga.cpu": "written last"}))
        chosen = median_side(pair, "ours", sides)
        self.assertEqual(chosen, Rate(1000, 40, 90))
        self.assertEqual(group.measurements, {"saga.cpu": "first", "other": "kept"})

    def test_a_failed_measurement_fails_the_side(self) -> None:
        from benchkit.__main__ import Side, median_side
        from benchkit.pairs import Rate

        self.assertIsNone(median_side(PostgresPair(), "ours", [Side(Rate(10), {}), Side(None, {})]))
        self.assertEqual(median_side(PostgresPair(), "ours", [Side(Rate(10), {})]), Rate(10))

    def test_three_wide_measurements_take_two_more_and_narrow_ones_do_not(self) -> None:
        import contextlib
        import io
        import os
        from typing import Any, cast
        from unittest import mock

        from benchkit.__main__ import run_pair
        from benchkit.bench import Bench
        from benchkit.pairs import Rate

        class Scripted(Pair):
            """A pair of three whose sides answer the rates given, in turn."""

            repeats = 3

            def __init__(self, ours: list[float], theirs: list[float]) -> None:
                super().__init__()
                self.name = "scripted"
                self.rates = {"ours": ours, "theirs": theirs}

            def ours(self, bench: Bench) -> Rate:
                return Rate(self.rates["ours"].pop(0))

            def theirs(self, bench: Bench) -> Rate:
                return Rate(self.rates["theirs"].pop(0))

        class Quiet:
            seconds = 1

            def quiet(self) -> None: ...
            def pause(self, *pids: int | None) -> None: ...
            def resume_paused(self) -> None: ...

        bench = cast(Bench, cast(Any, Quiet()))
        progress = io.StringIO()
        narrow = Scripted([100, 105, 98, 1, 1], [200, 210, 205, 1, 1])
        with contextlib.redirect_stderr(progress):
            outcome, ok = run_pair(bench, narrow, False, [])
        self.assertEqual((outcome.ours, outcome.theirs, ok), (Rate(100), Rate(205), True))
        self.assertEqual(narrow.rates, {"ours": [1, 1], "theirs": [1, 1]})
        # Ours 100-120 (20% apart): two more of each, and the median of five counts.
        wide = Scripted([100, 120, 110, 104, 103], [200, 210, 205, 190, 195])
        with contextlib.redirect_stderr(progress):
            outcome, _ = run_pair(bench, wide, False, [])
        self.assertEqual((outcome.ours, outcome.theirs), (Rate(104), Rate(200)))
        self.assertEqual(wide.rates, {"ours": [], "theirs": []})
        # A count set by BENCH_REPEATS_<PAIR> is kept, wide or not.
        fixed = Scripted([100, 120, 110, 1, 1], [200, 210, 205, 1, 1])
        with mock.patch.dict(os.environ, {"BENCH_REPEATS_SCRIPTED": "3"}), contextlib.redirect_stderr(progress):
            outcome, _ = run_pair(bench, fixed, False, [])
        self.assertEqual(progress.getvalue().count("measurements are 20% apart: 2 more of each"), 1)
        self.assertEqual((outcome.ours, fixed.rates["ours"]), (Rate(110), [1, 1]))

    def test_payouts_first_round_measures_every_size_and_the_table_shows_the_median(self) -> None:
        import contextlib
        import io
        from unittest import mock

        from benchkit.pairs.payout import FloorResult, PayoutRuns, RunResult

        runs = PayoutRuns()
        self.assertEqual((runs.sizes, runs.payout.measurements(), runs.payout.at_most()), ([100_000, 1_000_000], 3, 5))
        seconds = {100_000: [1.5], 1_000_000: [13.0, 12.0, 14.0]}
        floors = {100_000: [0.2], 1_000_000: [1.6, 1.4, 1.3]}
        measured: list[tuple[str, int]] = []

        def run_once(bench: object, bookings: int) -> RunResult:
            measured.append(("run", bookings))
            result = RunResult(bookings, bookings // 100, seconds[bookings].pop(0), 100.0, 10.0, "ok", "n/a", f"cores {len(measured)}")
            runs.keep(result)
            return result

        def floor(bench: object, bookings: int) -> FloorResult:
            measured.append(("floor", bookings))
            result = FloorResult(bookings, bookings // 100, floors[bookings].pop(0), 2.0, "ok", "ok")
            runs.floors[bookings] = result
            return result

        with mock.patch.object(runs, "run_once", run_once), mock.patch.object(runs, "floor", floor), contextlib.redirect_stdout(io.StringIO()):
            rates = [(runs.payout.ours(mock.Mock()).per_second, runs.payout.theirs(mock.Mock()).per_second) for _ in range(3)]
        self.assertEqual(rates, [(76_923, 625_000), (83_333, 714_286), (71_429, 769_231)])
        largest = [("run", 1_000_000), ("floor", 1_000_000)]
        self.assertEqual(measured, [("run", 100_000), ("run", 1_000_000), ("floor", 100_000), ("floor", 1_000_000), *largest, *largest])
        self.assertEqual((runs.runs[1_000_000].seconds, runs.floors[1_000_000].aggregate_seconds), (14.0, 1.3))
        with contextlib.redirect_stderr(io.StringIO()):
            runs.keep_medians()
        self.assertEqual((runs.runs[1_000_000].seconds, runs.floors[1_000_000].aggregate_seconds), (13.0, 1.4))
        self.assertEqual((runs.measurements["run-1000000.cpu"], runs.runs[100_000].seconds), ("cores 2", 1.5))

    def test_the_count_is_the_pairs_own_or_an_odd_setting(self) -> None:
        import os
        from unittest import mock

        from benchkit.pairs.core import MessagingPair

        once = Pair()
        once.name = "once"
        self.assertEqual((once.measurements(), MessagingPair().measurements()), (1, 3))
        with mock.patch.dict(os.environ, {"BENCH_REPEATS_MESSAGING": "5", "BENCH_REPEATS_ONCE": "3"}):
            self.assertEqual((once.measurements(), MessagingPair().measurements()), (3, 5))
        from benchkit.pairs.booking import BookingService

        holds, bookings = BookingService().pairs
        self.assertEqual((holds.measurements(), bookings.measurements()), (3, 3))
        self.assertEqual((holds.at_most(), bookings.at_most(), once.at_most()), (5, 5, 1))
        with mock.patch.dict(os.environ, {"BENCH_REPEATS_BOOKINGS": "1"}):
            self.assertEqual((bookings.measurements(), bookings.at_most()), (1, 1))
        from benchkit.pairs.notification import NotificationService

        self.assertEqual((NotificationService().notification.measurements(), NotificationService().notification.at_most()), (3, 5))
        with mock.patch.dict(os.environ, {"NOTIFICATION_RUNS": "steady slow"}), self.assertRaises(BenchError):
            NotificationService()
        for bad in ("2", "0", "x", "7"):
            with mock.patch.dict(os.environ, {"BENCH_REPEATS_MESSAGING": bad}), self.assertRaises(BenchError):
                MessagingPair().measurements()


class OutputTests(unittest.TestCase):
    def test_ours_is_the_last_metric_line_with_its_latency(self) -> None:
        output = "booking_holds_per_second=1\nbooking_holds_per_second=12515\nbooking_holds_p50=4.839 ms p99=10.027 ms max=30.1 ms\n"
        rate = parse_ours(output, "booking_holds_per_second")
        self.assertEqual((rate.per_second, rate.p50, rate.p99), (12515, 4.839, 10.027))

    def test_a_missing_metric_is_an_error_not_zero(self) -> None:
        with self.assertRaises(BenchError):
            parse_ours("booking_holds_created=5\n", "booking_holds_per_second")

    def test_pgbench_rate_and_latencies(self) -> None:
        self.assertEqual(pgbench.tps("tps = 1234.5 (without initial connection time)\n"), 1234.5)
        self.assertEqual(pgbench.transactions("number of transactions actually processed: 61440\n"), 61440)
        with self.assertRaises(BenchError):
            pgbench.tps("connection refused\n")
        with tempfile.TemporaryDirectory() as folder:
            prefix = Path(folder) / "log"
            # client transaction latency_us script epoch us: 100 transactions of 1..100 ms over two files.
            for part, values in enumerate((range(1, 51), range(51, 101))):
                lines = "".join(f"0 {v} {v * 1000} 0 0 0\n" for v in values)
                Path(f"{prefix}.{part}").write_text(lines, encoding="ascii")
            self.assertEqual(pgbench.latency(prefix), (51.0, 100.0))
            self.assertEqual(list(Path(folder).iterdir()), [], "the logs are removed")
            self.assertIsNone(pgbench.latency(prefix))

    def test_pgbench_latencies_under_a_rate_keep_the_lag_column_out(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            prefix = Path(folder) / "log"
            # Under --rate each line ends with the schedule lag in µs; the latency (third field) includes it.
            lines = "".join(f"{v % 8} {v} {v * 100} 0 1796487799 {v} {v * 7}\n" for v in range(1000, 0, -1))
            Path(f"{prefix}.0").write_text(lines, encoding="ascii")
            values = pgbench.latencies(prefix)
            self.assertEqual(len(values), 1000)
            self.assertEqual(values[:2], [100, 200], "sorted")
            self.assertEqual([pgbench.quantile_ms(values, q) for q in (0.5, 0.99, 0.999)], [50.1, 99.1, 100.0])

    def test_metrics_match_labels_in_any_order(self) -> None:
        text = (
            "# TYPE hb_requests counter\n"
            'hb_requests{http_response_status_code="201",http_route="/v1/holds",http_request_method="POST"} 78016\n'
            'pool_wait_duration_seconds_count{pool="postgres"} 10\npool_wait_duration_seconds_sum{pool="postgres"} 0.05\n'
        )
        name = 'hb_requests{http_route="/v1/holds",http_request_method="POST",http_response_status_code="201"}'
        self.assertEqual(metrics.sample(text, name), 78016)
        self.assertEqual(metrics.sample(text, 'hb_requests{http_route="/v1/bookings"}'), 0)
        before = 'pool_wait_duration_seconds_count{pool="postgres"} 4\npool_wait_duration_seconds_sum{pool="postgres"} 0.02\n'
        self.assertEqual(metrics.pool_waits(before, text, "postgres"), "postgres: 6 leases waited, 5.00 ms on average")

    def test_open_loop_counts(self) -> None:
        output = (
            "open_loop_throughput=1216 completed=3648 failures=2 conflicts=0\n"
            "open_loop_served holds=3800 bookings=3790 webhooks=0 failures_in_warmup=3 (every arrival)\n"
        )
        self.assertEqual((openloop.served(output, "holds"), openloop.served(output, "bookings")), (3800, 3790))
        self.assertEqual(openloop.failures(output), 5)
        self.assertEqual(openloop.arrivals_served(output), 3800)
        webhooks = "open_loop_served holds=0 bookings=0 webhooks=5200 failures_in_warmup=0 (every arrival)\n"
        self.assertEqual(openloop.arrivals_served(webhooks), 5200)

    def test_cpu_per_transaction_in_microseconds(self) -> None:
        # 2 s of the service's CPU and 0.5 s of Postgres' over 1,000 transactions: 2,000 and 500 us each.
        line = measure.per_transaction("x", 1000, service=2 * measure.CLOCK_TICKS, postgres=measure.CLOCK_TICKS / 2)
        self.assertEqual(line, "x_cpu_us_per_txn service=2000 postgres=500 total=2500")

    def test_a_busy_machine_is_reported(self) -> None:
        lines = "x_cpu_cores service=1.0 other=0.16 idle=0\ny_cpu_cores service=1.0 other=0.15 idle=0\nx_wal bytes_per_txn=1"
        self.assertEqual(len(measure.unreliable(lines)), 1)

    def test_time_taken_by_the_hypervisor_is_reported(self) -> None:
        lines = "x_cpu_cores service=1.0 other=0.00 steal=0.20 idle=0\ny_cpu_cores service=1.0 other=0.00 steal=0.15 idle=0"
        warnings = measure.unreliable(lines)
        self.assertEqual(len(warnings), 1)
        self.assertIn("steal", warnings[0])

    def test_steal_over_a_whole_side_is_reported_above_the_line(self) -> None:
        # 0.16 and 0.15 cores over 10 s: only the first is above the line, and it names its side.
        ticks = measure.CLOCK_TICKS
        warning = measure.steal_warning("postgres: ours 2 of 3", int(1.6 * ticks), 10.0)
        self.assertIsNotNone(warning)
        self.assertIn("0.16 cores (steal) over the 10.0 s of postgres: ours 2 of 3", warning or "")
        self.assertIsNone(measure.steal_warning("postgres: ours 2 of 3", int(1.5 * ticks), 10.0))
        self.assertIsNone(measure.steal_warning("instant", 0, 0.0))

    def test_every_side_is_checked_for_steal(self) -> None:
        import contextlib
        import io
        from typing import Any, cast
        from unittest import mock

        from benchkit.__main__ import quiet_then
        from benchkit.pairs import Rate

        bench = cast(Any, mock.Mock())
        readings = iter([1_000, 1_000 + 10 * measure.CLOCK_TICKS])  # 10 s of steal over the side
        printed = io.StringIO()
        with mock.patch.object(measure, "steal_ticks", lambda: next(readings)), contextlib.redirect_stderr(printed):
            self.assertEqual(quiet_then(bench, lambda _: Rate(5), "redis: theirs"), Rate(5))
        bench.quiet.assert_called_once()
        self.assertIn("(steal) over the", printed.getvalue())
        self.assertIn("of redis: theirs: that measurement is unreliable", printed.getvalue())


class BookingPlanTests(unittest.TestCase):
    def test_the_event_ranges_follow_each_other(self) -> None:
        plan = EventPlan.sized(10, 2)
        ranges = [plan.warm_holds, plan.holds, plan.warm_bookings, plan.bookings]
        self.assertEqual([r[1] for r in ranges], [16, 80, 5, 17])
        for before, after in zip(ranges, ranges[1:], strict=False):
            self.assertEqual(before[0] + before[1], after[0])
        self.assertEqual(plan.total, 118)
        self.assertEqual(plan.booking_round(0), (plan.warm_bookings, plan.bookings))

    def test_each_holds_measurement_has_events_of_its_own(self) -> None:
        plan = EventPlan.sized(10, 2, hold_rounds=3)
        self.assertEqual((plan.warm_holds, plan.holds), ((0, 48), (48, 240)))
        rounds = [plan.hold_round(index) for index in range(3)]
        self.assertEqual(rounds, [((0, 16), (48, 80)), ((16, 16), (128, 80)), ((32, 16), (208, 80))])
        self.assertEqual(plan.warm_bookings[0], 288)
        with self.assertRaises(BenchError):
            plan.hold_round(3)

    def test_each_bookings_measurement_has_events_of_its_own(self) -> None:
        plan = EventPlan.sized(10, 2, hold_rounds=1, booking_rounds=3)
        self.assertEqual((plan.warm_bookings, plan.bookings), ((96, 15), (111, 51)))
        rounds = [plan.booking_round(index) for index in range(3)]
        self.assertEqual(rounds, [((96, 5), (111, 17)), ((101, 5), (128, 17)), ((106, 5), (145, 17))])
        self.assertEqual(plan.total, 162)
        with self.assertRaises(BenchError):
            plan.booking_round(3)

    def test_the_reference_runs_the_services_own_hold_script(self) -> None:
        script = place_script(ROOT)
        self.assertIn("redis.call", script)
        self.assertFalse(script.startswith(" "), "the literal's indentation is removed")
        self.assertNotIn('"""', script)


if __name__ == "__main__":
    unittest.main()


class PauseTests(unittest.TestCase):
    """`Bench.pause` never leaves a process stopped while a session of the cluster sits in a transaction."""

    @staticmethod
    def state_of(pid: int) -> str:
        return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()[0]

    def pause_with(self, answers: list[str]) -> tuple[list[int], str, int]:
        """Pauses a `sleep` while `transactions_held` gives ANSWERS in turn (the last one from then on):
        the pids left paused, the sleep's state after the pause, and how many times it was asked."""
        import subprocess
        from unittest import mock

        from benchkit import bench as bench_module
        from benchkit.bench import Bench

        child = subprocess.Popen(["sleep", "60"])
        asked: list[float] = []

        def held(seconds: float) -> str:
            asked.append(seconds)
            return answers[min(len(asked), len(answers)) - 1]

        try:
            bench = Bench(ROOT, 1, Path(tempfile.gettempdir()), Path("/nonexistent"), 0, 0, None, {})
            with (
                mock.patch.object(bench_module, "PAUSE_SETTLE", 0.01),
                mock.patch.object(bench, "transactions_held", held),
                mock.patch.object(bench_module, "warn"),
                mock.patch.object(bench_module, "say"),
            ):
                bench.pause(child.pid, None)
                paused, state = list(bench.paused), self.state_of(child.pid)
                bench.resume_paused()
            return paused, state, len(asked)
        finally:
            child.kill()
            child.wait()

    def test_it_stops_again_once_no_session_holds_a_transaction(self) -> None:
        paused, state, asked = self.pause_with(["booking-consumers (idle in transaction)", "booking (idle in transaction)", ""])
        self.assertEqual(len(paused), 1)
        self.assertEqual(state, "T", "stopped")
        self.assertEqual(asked, 3, "asked after each stop")

    def test_it_leaves_the_process_running_when_a_transaction_stays_held(self) -> None:
        from benchkit.bench import PAUSE_TRIES

        paused, state, asked = self.pause_with(["notification (idle in transaction)"])
        self.assertEqual(paused, [])
        self.assertNotEqual(state, "T", "running again")
        self.assertEqual(asked, PAUSE_TRIES)
