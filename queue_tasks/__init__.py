"""Inkwell's queue: the Procrastinate App (`queue_tasks.app`), its tasks and the model client.

Run a worker with:  python -m procrastinate --app=queue_tasks.app worker
Nothing here imports Streamlit.
"""

from queue_tasks.procrastinate_app import app

__all__ = ["app"]
