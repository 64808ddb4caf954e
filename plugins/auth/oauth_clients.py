"""Machine clients (OAuth 2.0 client-credentials grant): an API token is a client, its id
the `client_id` and its secret the `client_secret`; the access token a client gets acts
with the API token's roles, never beyond what its user still holds.

A client's access token carries `client_id` (RFC 9068) and `owner` (the token's user id),
and is checked against the API token each time its actor is made, so revoking the API
token, its expiry or disabling its user ends the access tokens it obtained as well."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from baseshift.core.access import Actor, ActorKind
from baseshift.core.errors import Unauthorized

from .accounts import Accounts

TOKEN_PATH = "/api/v1/auth/token"
"""The OAuth 2.0 token endpoint (plugins/auth/client_credentials.py)."""
CLIENT_CLAIM = "client_id"
OWNER_CLAIM = "owner"


def client_claims(client: Actor, owner_id: str) -> dict[str, Any]:
    """The claims beside the registered ones of an access token for `client` (the actor of
    an API token)."""
    return {CLIENT_CLAIM: client.id, OWNER_CLAIM: owner_id}


def is_client_token(claims: Mapping[str, Any]) -> bool:
    return claims.get(CLIENT_CLAIM) is not None


async def client_actor(accounts: Accounts, claims: Mapping[str, Any]) -> Actor:
    """The client an access token with these (verified) claims stands for, as its API
    token is now: Unauthorized once that token is revoked or expired, or its user
    disabled."""
    client_id, owner = claims.get(CLIENT_CLAIM), claims.get(OWNER_CLAIM)
    if not isinstance(client_id, str) or not isinstance(owner, str):
        raise Unauthorized("access token of a client without its client or owner")
    record = next((t for t in await accounts.store.list_api_tokens(owner)
                   if t.id == client_id), None)
    if record is None or record.revoked_at is not None:
        raise Unauthorized("the API token of this client is revoked or no longer exists")
    if record.expires_at is not None and record.expires_at <= accounts.clock():
        raise Unauthorized(f"the API token '{record.name}' of this client has expired")
    actor = await accounts.actor(owner, token=(record.id, record.name, record.grants),
                                 claims={"jti": claims.get("jti"), CLIENT_CLAIM: client_id})
    if actor is None:
        raise Unauthorized("the user of this client is disabled or no longer exists")
    return replace(actor, kind=ActorKind.CLIENT)
