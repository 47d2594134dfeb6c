"""The ``nginx`` stand-in: the default welcome page on port 80 and the container's ports.

Same wire behaviour as the stock image for what tests and tutorials look at:
``Server: nginx/<version>``, the welcome page at ``/`` and ``/index.html``,
a 404 page elsewhere, one access-log line per request on stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from kubesvc.agent.images.httpd import Request, Response, exit_on_sigterm, listen_all

VERSION = "1.27.3"
SERVER = f"nginx/{VERSION}"

WELCOME = b"""<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>This nginx answers from a kubesvc pod: the web server is installed and working.</p>
</body>
</html>
"""

NOT_FOUND = f"""<html>
<head><title>404 Not Found</title></head>
<body>
<center><h1>404 Not Found</h1></center>
<hr><center>{SERVER}</center>
</body>
</html>
""".encode()


async def handle(req: Request) -> Response:
    if req.method not in ("GET", "HEAD"):
        resp = Response(405, b"", {"Content-Type": "text/html"})
    elif req.path in ("/", "/index.html"):
        resp = Response(200, WELCOME, {"Content-Type": "text/html", "Accept-Ranges": "bytes"})
    else:
        resp = Response(404, NOT_FOUND, {"Content-Type": "text/html"})
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
    agent = req.headers.get("user-agent", "-")
    print(f'{req.peer[0]} - - [{stamp}] "{req.method} {req.target} {req.version}" {resp.status} '
          f'{len(resp.body)} "-" "{agent}" "-"', flush=True)
    return resp


def ports() -> list[int]:
    """80, plus every TCP port the container declares (the agent passes them in the environment)."""
    out = [80]
    for p in (os.environ.get("KUBESVC_CONTAINER_PORTS") or "").split(","):
        if p.strip().isdigit() and int(p) not in out:
            out.append(int(p))
    return out


async def main() -> None:
    exit_on_sigterm()
    await listen_all(handle, SERVER, ports())
    print("/docker-entrypoint.sh: Configuration complete; ready for start up", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
