"""A request id on every request: the caller's ``X-Request-ID`` when it is sane, else a
new one; sent back in the response's ``X-Request-ID`` and put on every log line of the
request (broker.kernel.logs.REQUEST_ID), including the broker loop's lines for its work.

A WSGI middleware, outermost of the app's own (web.create_app), so the id exists before
anything logs. Each request runs in a copy of the thread's context: whatever the request
sets in context variables (its id, how a search came in) ends with it.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from broker.kernel.logs import REQUEST_ID

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HEADER = "X-Request-ID"
ENVIRON_KEY = "balis.request_id"  # the id, for the access log outside this middleware
# A proxy's id (nginx's $request_id is 32 hex digits; UUIDs have dashes): at most 128 of
# these characters. Anything else could forge log lines or fill them, so it is replaced.
_SANE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def sane(value: str | None) -> str | None:
    """``value`` if it can be used as a request id as it is, else None."""
    if value is None:
        return None
    value = value.strip()
    return value if _SANE.match(value) else None


def new_id() -> str:
    return secrets.token_hex(16)


class RequestIds:
    """WSGI middleware: the request id in the environ, the logs' context and the answer."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse
                 ) -> Iterable[bytes]:
        request_id = sane(environ.get("HTTP_X_REQUEST_ID")) or new_id()
        environ[ENVIRON_KEY] = request_id

        def with_id(status: str, headers: list[tuple[str, str]],
                    exc_info: OptExcInfo | None = None, /) -> Callable[[bytes], object]:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        def run() -> Iterable[bytes]:
            REQUEST_ID.set(request_id)
            return self.app(environ, with_id)

        return contextvars.copy_context().run(run)
