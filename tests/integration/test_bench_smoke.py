"""Every benchmark in bench/ runs at a tiny size and prints its figure lines.

No timed assertions: the figures depend on the machine. These tests only prove each benchmark still
runs end to end (its own PostgreSQL, real workers, the product code it measures) and reports.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURE_LINE = re.compile(r"^FIGURE (\S+) = (-?[\d,]+\.\d+|nan) ", re.MULTILINE)


def run_benchmark(module: str, *args: str, timeout: float = 240) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The benchmarks start their own database and workers; settings from the suite must not leak in.
    for name in ("DATABASE_URL", "INKWELL_LLM_BASE_URL", "INKWELL_LLM_API_KEY"):
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{module} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return dict(FIGURE_LINE.findall(result.stdout))


def test_throughput_benchmark_prints_inkwell_bare_and_ratio():
    figures = run_benchmark("bench.throughput", "--jobs", "20", "--workers", "1", "--rounds", "1")
    assert {"throughput_bare_1w_c10", "throughput_inkwell_1w_c10", "throughput_ratio_1w_c10"} <= figures.keys()


def test_submit_benchmark_prints_single_and_bulk_figures():
    figures = run_benchmark("bench.submit", "--single", "10", "--bulk", "50", "--rounds", "1")
    assert {
        "submit_single_inkwell", "submit_single_bare_defer_async", "submit_single_ratio_vs_defer_async",
        "submit_bulk_inkwell_seconds", "submit_bulk_bare_seconds", "submit_bulk_ratio",
    } <= figures.keys()


def test_latency_benchmark_prints_start_and_visibility_percentiles():
    figures = run_benchmark("bench.latency", "--samples", "5", "--gap", "0.02")
    assert {
        "latency_start_inkwell_p95", "latency_start_bare_p95", "latency_visible_on_live_p95",
    } <= figures.keys()


def test_model_bound_benchmark_prints_wall_time_memory_and_progress_writes():
    figures = run_benchmark("bench.model_bound", "--jobs", "10", "--concurrency", "5", "--seconds", "0.2", "--chunks", "4")
    assert {
        "model_bound_bare_wall", "model_bound_inkwell_wall", "model_bound_inkwell_worker_peak_rss",
        "model_bound_progress_writes_per_job_second", "model_bound_progress_updates_per_job_second",
    } <= figures.keys()


@pytest.mark.timeout(400)
def test_history_scale_benchmark_prints_history_overview_and_live_figures():
    figures = run_benchmark(
        "bench.history_scale", "--rows", "3000", "--repeats", "1", "--sessions", "2", "--load-seconds", "2", timeout=360
    )
    assert {
        "alone_history_first_page_page_capped_count_p95", "alone_overview_all_figures_p95",
        "alone_live_all_waiting_running_p95", "2_sessions_history_first_page_page_capped_count_p95",
    } <= figures.keys()


def test_fair_sharing_benchmark_prints_the_single_requests_wait_beside_first_come_first_served():
    figures = run_benchmark("bench.fair_sharing", "--jobs", "60", "--concurrency", "4", "--model-seconds", "0.05")
    assert {"fair_sharing_single_wait", "fifo_single_wait", "fair_sharing_batch_drain"} <= figures.keys()


def test_refill_benchmark_prints_max_over_median_before_and_after():
    figures = run_benchmark(
        "bench.refill", "--rounds", "2", "--jobs", "10", "--concurrency", "5", "--seconds", "0.05", "--which", "inkwell,bare"
    )
    assert {"refill_before_inkwell_max_over_median", "refill_after_inkwell_max_over_median",
            "refill_before_bare_max_over_median", "refill_after_bare_max_over_median"} <= set(figures)


def test_peers_benchmark_prints_inkwell_and_bare_side_by_side_and_what_the_kill_lost():
    figures = run_benchmark(
        "bench.peers", "--systems", "inkwell,bare", "--jobs", "10", "--concurrency", "5", "--seconds", "0.1",
        "--rounds", "1", "--scale", "1", "--latency-jobs", "2", "--kill-jobs", "4", "--kill-wait", "50", timeout=360,
    )
    assert {"peers_inkwell_wall_median", "peers_bare_wall_median", "peers_postgres_cpu_inkwell_over_bare_median"} <= set(figures)
    assert figures["peers_kill_inkwell_lost"] == "0.000"


def test_variants_benchmark_prints_each_variants_postgres_cpu_per_job(tmp_path):
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    figures = run_benchmark(
        "bench.variants", "--variant", "now", "--variant", "before=env:INKWELL_WORKER_POOL_SIZE=20+sql:bench/sql/notify_every_change.sql+code:HEAD",
        "--rounds", "1", "--jobs", "10", "--workers", "1", "--concurrency", "5", "--seconds", "0.2",
    )
    assert {"variants_now_postgres_ms_per_job", "variants_before_postgres_ms_per_job"} <= figures.keys()
    assert all(float(figures[name]) > 0 for name in ("variants_now_postgres_ms_per_job", "variants_before_postgres_ms_per_job"))
    # The `code:` variant's worktree is gone afterwards.
    assert subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout == worktrees
