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


def test_runs_merge_into_medians_figure_by_figure() -> None:
    runs = [{"rate": 10.0, "points": [{"p99": 1.0}], "name": "a", "cpu": {"x": 3}},
            {"rate": 30.0, "points": [{"p99": float("nan")}], "name": "a", "cpu": {"x": 1}},
            {"rate": 20.0, "points": [{"p99": 5.0}], "name": "a", "cpu": {"x": 2}}]
    merged = report.median_of(runs)
    assert merged == {"rate": 20.0, "points": [{"p99": 3.0}], "name": "a", "cpu": {"x": 2}}
    assert math.isnan(report.median_of([float("nan")]))
