"""The reference receiver of the HTTP benchmarks: aiohttp that parses each JSON body and answers.

`python -m bench.bare_receiver PORT` serves POST on any path, counting the alerts of the bodies it
parsed; GET /count answers the count. Nothing is stored: this is the most a webhook receiver on
aiohttp can take, the figure the router's ingest is compared with.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web


def app() -> web.Application:
    received = {"alerts": 0, "requests": 0}

    async def receive(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        received["alerts"] += len(body.get("alerts", ()))
        received["requests"] += 1
        return web.json_response({"status": "accepted"})

    async def count(_request: web.Request) -> web.Response:
        return web.json_response(received)

    application = web.Application()
    application.router.add_post("/{path:.*}", receive)
    application.router.add_get("/count", count)
    return application


def main() -> None:
    web.run_app(app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
