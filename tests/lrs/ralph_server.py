"""Runs the Ralph LRS for the xAPI tests: its real API (validation, authentication, duplicate
ids) on the filesystem backend, in one process without auto-reload, so a test can kill it for
an outage and start it again on the same data.

Ralph's filesystem LRS backend (meant for development) creates its statements file on the first
write and refuses every later write to it; here it appends instead. Nothing else is changed.

Usage: python ralph_server.py HOST PORT (settings from RALPH_* environment variables).
"""

import sys

import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND

if __name__ == "__main__":
    from ralph.api import app

    uvicorn.run(app, host=sys.argv[1], port=int(sys.argv[2]), log_level="info")
