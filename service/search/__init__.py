"""Adaptive sweeps (#18): sampling the next trials and judging runs at rungs.

`rules` and `sampler` are pure (values in, decisions out); the storage side that reads
our tables and writes the decisions is service/storage/search.py.
"""
