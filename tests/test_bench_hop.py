"""The one-hop relay benchmark (tests/bench/hop.py) in its short form, on the real broker and
database: every variant relays each of 200 messages exactly once and reports its figures, and
a run whose output does not match its input fails. Never its speed: that is the benchmark's
to print (`python -m tests.bench.hop`)."""
from __future__ import annotations

import aio_pika
import pytest

from tests.bench import hop
from tests.support.infra import Servers

MESSAGES = 200


async def test_every_variant_relays_each_message_once_and_reports_its_figures(infrastructure: Servers) -> None:
    figures = await hop.measure(infrastructure, hop.VARIANTS, messages=MESSAGES, runs=1)

    assert list(figures) == list(hop.VARIANTS)
    raw_rate = figures["raw"]["per_second"]
    for variant, figure in figures.items():
        [seconds] = figure["seconds_of_runs"]
        assert (figure["messages"], figure["prefetch"], figure["runs"]) == (MESSAGES, hop.PREFETCH, 1), variant
        assert figure["seconds"] == seconds > 0, variant
        assert figure["per_second"] == pytest.approx(MESSAGES / seconds), variant
        assert figure["us_per_message"] == pytest.approx(seconds / MESSAGES * 1e6), variant
        assert figure["ratio_to_raw"] == pytest.approx(figure["per_second"] / raw_rate), variant
        assert figure["cpu_us_per_message"] > 0, variant
    assert hop.table(figures).count("\n") == len(hop.VARIANTS)  # a header and a row each


async def test_a_run_whose_output_queue_holds_one_too_many_fails(infrastructure: Servers,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fill = hop._fill

    async def fill_and_answer_one_ahead(grounds: hop.Grounds, bodies: list[tuple[str, bytes]]) -> None:
        await fill(grounds, bodies)
        # An answer already waiting in the output queue: as if one message were relayed twice.
        connection = await aio_pika.connect(grounds.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(grounds.output_exchange, ensure=False)
            await exchange.publish(aio_pika.Message(b"{}"), hop.OUTPUT.routing_key)

    monkeypatch.setattr(hop, "_fill", fill_and_answer_one_ahead)
    with pytest.raises(hop.HopFailed, match="21 messages in the output queue"):
        await hop.run_once("raw", infrastructure, messages=20)
