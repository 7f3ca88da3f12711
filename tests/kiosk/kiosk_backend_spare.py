"""``openshelf backend`` with its imports done ahead of time: the spare backend the kiosk tests keep ready.

Importing the backend is most of its start-up (FastAPI, SQLAlchemy, alembic);
the tests start the next backend process while a test runs, and it waits here.
One line on stdin names the site file; from then on the process is exactly
``openshelf backend --site <site file>`` (the command line's own entry point).
An empty line or end of input ends it without starting anything.
"""

from __future__ import annotations

import sys

import backend.main  # noqa: F401 - the slow part, done while waiting
from openshelf.cli import main


def run() -> int:
    site = sys.stdin.readline().strip()
    if not site:
        return 0
    return main(["backend", "--site", site])


if __name__ == "__main__":
    raise SystemExit(run())
