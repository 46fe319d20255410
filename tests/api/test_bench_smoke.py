"""bench.api runs at a tiny size and prints its figure lines (no timed assertions: figures depend on the machine)."""

from __future__ import annotations

from tests.integration.test_bench_smoke import run_benchmark


def test_api_benchmark_prints_create_status_polling_and_stream_figures():
    figures = run_benchmark("bench.api", "--rows", "2000", "--creates", "20", "--status-samples", "20", "--pollers", "10",
                            "--poll-seconds", "2", "--streams", "10", "--stream-jobs", "2", "--writes", "6")
    assert {
        "create_rate_ratio_api_vs_direct_acting", "create_api_p95", "create_8_clients_ratio", "status_api_p95_at_rows",
        "polling_p95", "polling_cpu_postgresql", "streams_listen_connections", "streams_delivery_p95",
        "status_api_cpu_per_call", "polling_api_cpu_per_call", "polling_errors",
    } <= figures.keys()
    assert figures["polling_errors"] == "0.000"  # every poll answered 200
    assert figures["streams_listen_connections"] == "1.000"
