"""One Celery worker's log server, bound to that worker's own loopback address.

Airflow's API server fetches a task's log from ``http://<the task instance's hostname>:<[logging]
worker_log_server_port>/log/...``: one port for every worker, told apart by host. ``airflow celery worker``
serves its logs on every address of its machine (``serve-logs`` binds ``::``/``0.0.0.0``), so two workers
on one machine cannot both serve on that port. Each e2e worker therefore runs with ``--skip-serve-logs``
and this process serves the same Airflow app (``airflow.utils.serve_logs.log_server``, with its JWT
check) from the worker's ``AIRFLOW_HOME`` on the worker's address (127.0.0.2, 127.0.0.3, ...), as each
would on a machine of its own. Stops on SIGINT.
"""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvicorn
    from airflow.utils.serve_logs.log_server import get_app

    uvicorn.run(
        get_app(), host=args.host, port=args.port, log_level="info", log_config=None, access_log=False
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
