"""The one check every agent endpoint (logs, exec, attach, port-forward) makes first.

Only the API server may call the agent: it sends the cluster's agent token as a
bearer token.  No token configured means no access at all, never open access.
"""

from __future__ import annotations

import hmac

from aiohttp import web


def unauthorized(request: web.Request, token: str) -> web.Response | None:
    """A 401 response unless the request carries ``Bearer <token>``; None when it does."""
    auth = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        return None
    return web.Response(status=401, text="Unauthorized")
