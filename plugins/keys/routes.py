"""The key API: data keys of purpose "api" made on request, and data encrypted and
decrypted with them (each its own permission; audited with the key id, never the data).

A key of this API never opens a value sealed for the store (purpose "store"): such a key id
is unknown here (404), and the purpose is bound into every ciphertext besides.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from baseshift.core import audit
from baseshift.core.errors import InputError, NotFound, SealError
from baseshift.web.access import requires
from baseshift.web.openapi import operation
from baseshift.web.requests import baseshift_of, json_object, only_fields, read_json
from baseshift.web.responses import JSONResponse
from baseshift.web.schemas import obj

from .envelope import API, KEY_ID, Envelope, Token, open_with
from .plugin import KEYS_DECRYPT, KEYS_ENCRYPT, KEYS_GENERATE
from .service import Keys, keys_of

TAGS = ["keys"]
STRING = {"type": "string"}
KEY = obj({"key_id": STRING}, ("key_id",))
ENCRYPT = obj({"key_id": STRING, "data": STRING}, ("key_id", "data"), closed=True)
ENCRYPTED = obj({"encrypted_data": STRING}, ("encrypted_data",))
DECRYPT = obj({"key_id": STRING, "encrypted_data": STRING}, ("key_id", "encrypted_data"),
              closed=True)
DECRYPTED = obj({"data": STRING}, ("data",))


def _keys(request: Request) -> Keys:
    bs = baseshift_of(request)
    return keys_of(bs.stash, bs.settings, bs.store)


async def _body(request: Request, fields: tuple[str, ...]) -> dict[str, str]:
    body = json_object(await read_json(request), "body")
    only_fields(body, set(fields))
    for name in fields:
        if not isinstance(body.get(name), str):
            raise InputError(f"'{name}' must be a string", details={"field": name})
    return {name: str(body[name]) for name in fields}


async def _api_key(envelope: Envelope, key_id: str) -> Any:
    """The cipher of API key `key_id`; NotFound for any other id (a store key included)."""
    found = await envelope.key(key_id) if KEY_ID.fullmatch(key_id) else None
    if found is None or found[0] != API:
        raise NotFound(f"no API key {key_id!r}",
                       hint="make one with POST /api/v1/keys/generate")
    return found[1]


async def _record(request: Request, action: str, key_id: str,
                  refused: SealError | None = None) -> None:
    resource = f"data_key:{key_id}"
    done = (audit.entry(action, resource) if refused is None else
            audit.entry(action, resource, audit.FAILURE, reason=refused.message))
    await audit.record(baseshift_of(request).store, [done])


@requires(KEYS_GENERATE)
@operation("Make a data key for the key API (stored wrapped by the key-encryption key)",
           tags=TAGS, response=KEY, status=201, body_required=False)
async def generate(request: Request) -> Response:
    record = await _keys(request).envelope.new_key(API)
    await _record(request, "keys.generate", record.id)
    return JSONResponse({"key_id": record.id}, status_code=201)


@requires(KEYS_ENCRYPT)
@operation("Encrypt text with an API key (AES-256-GCM)", tags=TAGS, request=ENCRYPT,
           response=ENCRYPTED, errors=(400, 404, 422))
async def encrypt(request: Request) -> Response:
    body = await _body(request, ("key_id", "data"))
    cipher = await _api_key(_keys(request).envelope, body["key_id"])
    sealed = Envelope.seal_with(body["key_id"], API, cipher, body["data"])
    await _record(request, "keys.encrypt", body["key_id"])
    return JSONResponse({"encrypted_data": sealed})


@requires(KEYS_DECRYPT)
@operation("Decrypt text encrypted with an API key", tags=TAGS, request=DECRYPT,
           response=DECRYPTED, errors=(400, 404, 422))
async def decrypt(request: Request) -> Response:
    body = await _body(request, ("key_id", "encrypted_data"))
    key_id = body["key_id"]
    cipher = await _api_key(_keys(request).envelope, key_id)
    try:
        token = Token.parse(body["encrypted_data"])
        if token.key_id != key_id:
            raise SealError(f"the data was encrypted with another key ({token.key_id}), "
                            f"not {key_id}")
        data = open_with(token, API, cipher)
    except SealError as exc:
        await _record(request, "keys.decrypt", key_id, exc)
        raise
    await _record(request, "keys.decrypt", key_id)
    return JSONResponse({"data": data})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/keys/generate", generate, methods=["POST"], name="keys:generate"),
        Route("/api/v1/encrypt", encrypt, methods=["POST"], name="keys:encrypt"),
        Route("/api/v1/decrypt", decrypt, methods=["POST"], name="keys:decrypt"),
    ]
