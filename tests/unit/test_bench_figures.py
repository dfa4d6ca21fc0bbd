"""The benchmark's arithmetic (tests/bench): how the raw pipeline shares out the product's work,
and how runs merge into medians; no I/O."""
from __future__ import annotations

import math

from tests.bench import raw, report


def test_the_raw_pipeline_does_per_application_what_the_product_did() -> None:
    plan = raw.Plan.of({"published": 7.04, "consumed": 4.98, "transactions": 20.4})
    assert (plan.stages, plan.publishes, plan.transactions) == (5, 7, 20)
    # The entry publish, then each stage's: one onwards (the last one's to `done`) and the rest to the sink.
    assert 1 + sum(plan.stage_publishes()) == plan.publishes
    assert all(p >= 1 for p in plan.stage_publishes())
    # One write per stage (its unit of work), the rest reads, shared out evenly.
    assert sum(plan.stage_reads()) == 20 - 5 and max(plan.stage_reads()) - min(plan.stage_reads()) <= 1


def test_a_plan_never_publishes_less_than_its_chain_needs() -> None:
    plan = raw.Plan.of({"published": 2, "consumed": 4, "transactions": 0})
    assert plan.publishes == 5 and plan.stage_publishes() == [1, 1, 1, 1] and plan.stage_reads() == [0] * 4


def test_the_least_work_floor_is_one_transaction_per_consumed_message() -> None:
    plan = raw.Plan.least_work()
    assert (plan.stages, plan.publishes, plan.transactions, plan.prefetch, plan.inbox) == (5, 6, 5, 64, True)
    assert plan.stage_publishes() == [1] * 5 and plan.stage_reads() == [0] * 5  # nothing but the chain


def test_targets_are_judged_from_the_figures_a_run_measured() -> None:
    at = {"completed_per_s": 120.0, "drained_per_s": 120.0, "per_application": {"transactions": 5.6, "published": 6.0, "consumed": 5.0},
          "cpu_ms_per_application": {"machine": 16.0, "intake": 1.0, "status": 1.0, "license_issuer": 1.0,
                                     "order_id": 1.0, "broker": 1.0, "database": 1.0}, "peak_rss_mb": {}}
    m = {"saturation": {"8": {**at, "drained_per_s": 130.0}, "64": at},
         "least_work": {c: {"completed_per_s": 0.0, "drained_per_s": rate, "cpu_ms_per_application": 10.0,
                            "plan": raw.Plan.least_work().figures} for c, rate in (("8", 200.0), ("64", 160.0))},
         "latency": [{"offered_per_s": 80.0, "achieved_per_s": 80.0, "p50_ms": 9.0, "p95_ms": 40.0, "p99_ms": 90.0},
                     {"offered_per_s": 67.7, "achieved_per_s": 67.7, "p50_ms": 9.0, "p95_ms": 40.0, "p99_ms": 120.0}]}
    found = report.targets(m)
    assert found["end to end ÷ least-work floor, 8 at once"] == 0.65
    assert found["end to end ÷ least-work floor, 64 at once"] == 0.75
    assert report._met("end to end, 64 at once ÷ 8 at once", found["end to end, 64 at once ÷ 8 at once"]) == "**not met**"
    assert report._met("machine CPU per application, ms", 16.0) == "**not met**"
    assert report._met("transactions per application", 5.6) == "met"
    assert found["machine CPU per application ÷ the floor's"] == 1.6  # more than 1.5× the floor's 10 ms
    # The 80/s against its 189/s floor is 0.42× the floor: here 67.7/s, p99 120 ms.
    assert found["p99 submit → completed at 0.42× the floor's rate, ms"] == 120.0
    assert "| p99 submit → completed at 80/s offered, ms ≤ 100 | 90.00 | met |" in report.table(
        {"median": m, "runs": 1})


def test_runs_merge_into_medians_figure_by_figure() -> None:
    runs = [{"rate": 10.0, "points": [{"p99": 1.0}], "name": "a", "cpu": {"x": 3}},
            {"rate": 30.0, "points": [{"p99": float("nan")}], "name": "a", "cpu": {"x": 1}},
            {"rate": 20.0, "points": [{"p99": 5.0}], "name": "a", "cpu": {"x": 2}}]
    merged = report.median_of(runs)
    assert merged == {"rate": 20.0, "points": [{"p99": 3.0}], "name": "a", "cpu": {"x": 2}}
    assert math.isnan(report.median_of([float("nan")]))
