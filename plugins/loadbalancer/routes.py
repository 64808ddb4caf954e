"""The load balancer API: `GET /api/v1/load_balancer/status` (`loadbalancer:read`) and
`POST /api/v1/load_balancer/add_server` / `remove_server` (`loadbalancer:admin`)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core.access import Permission
from baseshift.web.access import requires
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from . import service
from .nginx import Server
from .settings import MAX_WEIGHT, parse_address, parse_weight

LB_READ = Permission("loadbalancer:read", "see the load balancer's servers, their health "
                     "and NGINX's state")
LB_ADMIN = Permission("loadbalancer:admin", "add and remove the servers NGINX balances over")
PERMISSIONS = (LB_READ, LB_ADMIN)

TAGS = ["load balancer"]
ADDRESS = {"type": "string", "description": "host:port (hostname, IPv4 or [IPv6])"}
WEIGHT = {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT}
SERVER = obj({"address": ADDRESS, "weight": WEIGHT}, ("address", "weight"))
SERVERS = {"type": "array", "items": SERVER}
ADD_BODY = obj({"address": ADDRESS, "weight": WEIGHT}, ("address",), closed=True)
REMOVE_BODY = obj({"address": ADDRESS}, ("address",), closed=True)
CHANGED = obj({"address": ADDRESS, "reloaded": {"type": "boolean"}, "servers": SERVERS},
              ("address", "reloaded", "servers"))
STATUS = obj({
    "servers": {"type": "array", "items": obj(
        {"address": ADDRESS, "weight": WEIGHT, "up": {"type": "boolean"},
         "detail": {"type": "string"}, "checked_at": {"type": "number"}},
        ("address", "weight", "up", "detail", "checked_at"))},
    "nginx": obj({"running": {"type": "boolean"}, "pid": {"type": ["integer", "null"]},
                  "config": {"type": "string"}, "checksum": {"type": ["string", "null"]},
                  "reloaded_at": {"type": ["number", "null"]}},
                 ("running", "pid", "config", "checksum", "reloaded_at"))},
    ("servers", "nginx"))


@requires(LB_READ)
@operation("The registered servers with their health, whether NGINX runs, the checksum of "
           "its configuration and the last reload", tags=TAGS, response=STATUS)
async def status(request: Request) -> Response:
    return JSONResponse(await service.status(baseshift_of(request)))


@requires(LB_ADMIN)
@operation("Add a server to NGINX's upstream (or change its weight): the configuration is "
           "checked with `nginx -t` (422 with NGINX's message, the previous one kept) and "
           "NGINX reloaded", tags=TAGS, request=ADD_BODY, response=CHANGED,
           errors=(400, 422, 502))
async def add_server(request: Request) -> Response:
    body = json_object(await read_json(request), "body")
    only_fields(body, {"address", "weight"})
    server = Server(parse_address(body.get("address")), parse_weight(body.get("weight")))
    return JSONResponse(await service.add_server(baseshift_of(request), server))


@requires(LB_ADMIN)
@operation("Remove a server from NGINX's upstream; NGINX's graceful reload lets the requests "
           "it holds finish", tags=TAGS, request=REMOVE_BODY, response=CHANGED,
           errors=(400, 404, 422, 502))
async def remove_server(request: Request) -> Response:
    body = json_object(await read_json(request), "body")
    only_fields(body, {"address"})
    address = parse_address(body.get("address"))
    return JSONResponse(await service.remove_server(baseshift_of(request), address))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/load_balancer/status", status, methods=["GET"],
              name="loadbalancer:status"),
        Route("/api/v1/load_balancer/add_server", add_server, methods=["POST"],
              name="loadbalancer:add_server"),
        Route("/api/v1/load_balancer/remove_server", remove_server, methods=["POST"],
              name="loadbalancer:remove_server"),
    ]
