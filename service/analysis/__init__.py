"""Comparison math in pure numpy: smoothing, per-run summaries, groups across seeds.

No database, no HTTP: functions take step/value arrays and return numbers, so every
rule here is tested on hand-computed curves (tests/test_analysis.py).
"""
