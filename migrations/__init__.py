"""Alembic environment and versions: the only way the schema changes.

A package so that `pip install .` ships it; `service.migrate` points Alembic here.
"""
