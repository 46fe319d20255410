"""Inkwell's HTTP API: the jobs API the content teams' own sites and apps were written against.

A front door like the console: FastAPI routes, pydantic models of the contract, the error shape
and the event streams' fan-out live here; every operation goes through queue_tasks (submit,
actions) and db, acting as the caller under the database's row-level security.

    python -m api --port 8502        # what serve.py (./run) starts
"""
