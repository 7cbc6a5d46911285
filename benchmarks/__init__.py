"""Benchmarks and reliability runs of the sidecar and the operator (see docs/benchmarks.md).

One command each, from the repository root:

    .venv/bin/python -m benchmarks.sidecar
    .venv/bin/python -m benchmarks.fuzz
    .venv/bin/python -m benchmarks.reliability
    .venv/bin/python -m benchmarks.operator_scale --bots 100 1000
    .venv/bin/python -m benchmarks.operator_faults

Results are printed as a table and written as JSON into ``benchmarks/results/``.
"""
