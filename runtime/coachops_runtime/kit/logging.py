"""Structured JSON logs: one object per line, with the request id and the tenant id.

Message bodies and secrets are never logged at info level; log fields are chosen by the
caller, and nothing here dumps request bodies or headers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from coachops_runtime.kit.context import request_id_var, tenant_id_var

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            document["request_id"] = request_id
        tenant_id = tenant_id_var.get()
        if tenant_id:
            document["tenant_id"] = tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware logs each request once; uvicorn's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
