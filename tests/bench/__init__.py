"""The benchmark (`make bench`, `python -m tests.bench`): throughput, latency, CPU and memory
of the whole system on this machine, beside the floor a framework-free pipeline reaches and a
peer's one-hop relay, as figures (a JSON result, a table, a chart), never as timed tests."""
