"""Benchmarks: each module runs with one command (`python -m bench.<name>`) and prints its figures,
Inkwell beside bare Procrastinate measured in the same run. See bench/RESULTS.md."""
