"""What API Gateway's Cognito user pool authorizer checks of the token a signed-in user sends, for the local
gateway: an RS256 signature by a key of the pool's JWKS, the pool as issuer, an app client of the pool as
audience, not expired, and an ID token (``token_use``; a method without OAuth scopes takes ID tokens only). The
token is the whole Authorization header, as API Gateway reads it. The claims reach the function as strings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

REGION = "us-east-1"


def issuer(pool_id: str, region: str = REGION) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


class IdTokenVerifier:
    """``claims(token)``: the verified token's claims, or None for any token the authorizer would refuse."""

    def __init__(self, *, jwks_url: str, pool_id: str, client_ids: frozenset[str], region: str = REGION,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self._keys = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5)
        self._issuer = issuer(pool_id, region)
        self._client_ids = client_ids
        self._clock = clock

    def claims(self, token: str) -> dict[str, str] | None:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            payload: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], issuer=self._issuer, audience=list(self._client_ids),
                options={"require": ["exp", "iss", "aud", "sub", "token_use"], "verify_exp": False},
            )  # fmt: skip
        except (jwt.PyJWTError, ValueError):
            return None
        if payload.get("token_use") != "id" or float(payload["exp"]) <= self._clock():
            return None
        return {name: value if isinstance(value, str) else str(value) for name, value in payload.items()}
