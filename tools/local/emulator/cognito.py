"""Cognito user pools: `AWS::Cognito::UserPool`, `UserPoolClient` and `UserPoolDomain`, which moto's CloudFormation
does not model, and sign-in with SRP that really checks the password.

moto answers USER_SRP_AUTH with random salt and B values and accepts any PASSWORD_VERIFIER answer: a browser or SDK
signing in with a wrong password would get tokens. Here the server side of Cognito's SRP variant runs for real
(the 3072-bit group of RFC 5054 with g = 2, SHA-256, the password verifier made from the pool's name, the user's
id for SRP and the password, and the HKDF-derived key that signs the claim), so a client signs in only with the
user's password, as against Cognito. The tokens are moto's (RS256, verifiable through the pool's JWKS URL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

from moto.cognitoidp import models
from moto.cognitoidp.exceptions import NotAuthorizedError

from tools.local.emulator.cloudformation import register_model

# RFC 5054's 3072-bit group, as Cognito uses it.
N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B"
    "302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1F"
    "E649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096"
    "966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695"
    "5817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA7157"
    "5D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B"
    "18177B200CBBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
INFO = b"Caldera Derived Key"


def pad_hex(value: int | str) -> str:
    """The hex form SRP hashes: an even number of digits, and a leading 00 where the first bit is set."""
    text = value if isinstance(value, str) else format(value, "x")
    if len(text) % 2:
        text = "0" + text
    return "00" + text if text[0] in "89abcdefABCDEF" else text


def hex_hash(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(hex_hash("00" + N_HEX + "0" + format(G, "x")), 16)


def password_verifier(pool_name: str, user_id: str, password: str, salt_hex: str) -> int:
    """v = g^x mod N for the user's password, x = H(salt | H(pool name | user id | ":" | password))."""
    inner = hashlib.sha256(f"{pool_name}{user_id}:{password}".encode()).hexdigest()
    return pow(G, int(hex_hash(pad_hex(salt_hex) + inner), 16), N)


def session_key(premaster: int, u: int) -> bytes:
    """HKDF-SHA256 of the shared secret with u as salt, 16 bytes: the key that signs the password claim."""
    prk = hmac.new(bytes.fromhex(pad_hex(format(u, "x"))), bytes.fromhex(pad_hex(premaster)), hashlib.sha256).digest()
    return hmac.new(prk, INFO + b"\x01", hashlib.sha256).digest()[:16]


def claim_signature(key: bytes, pool_name: str, user_id: str, secret_block: str, timestamp: str) -> str:
    message = pool_name.encode() + user_id.encode() + base64.b64decode(secret_block) + timestamp.encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


class SrpChallenge:
    """The server's half of one SRP sign-in: b, B = k·v + g^b, and what the claim must be signed with."""

    def __init__(self, pool_id: str, user_id: str, password: str, big_a: str) -> None:
        self.pool_name = pool_id.split("_", 1)[1]
        self.user_id = user_id
        self.salt = secrets.token_hex(16)
        self.a_value = int(big_a, 16)
        verifier = password_verifier(self.pool_name, user_id, password, self.salt)
        b = secrets.randbelow(N - 2) + 1
        self.b_value = (K * verifier + pow(G, b, N)) % N
        u = int(hex_hash(pad_hex(self.a_value) + pad_hex(self.b_value)), 16)
        # S = (A · v^u)^b mod N: equals the client's (B - k·g^x)^(a + u·x) only if it knew the password.
        self.key = session_key(pow(self.a_value * pow(verifier, u, N) % N, b, N), u) if self.a_value % N else b""
        self.secret_block = base64.b64encode(secrets.token_bytes(64)).decode()

    def valid(self, signature: str, timestamp: str) -> bool:
        if not self.key:  # A ≡ 0 mod N would make the shared secret 0: Cognito refuses it too
            return False
        expected = claim_signature(self.key, self.pool_name, self.user_id, self.secret_block, timestamp)
        return hmac.compare_digest(expected, signature)


_CHALLENGES: dict[str, tuple[str, SrpChallenge]] = {}  # secret block -> (moto's session, challenge)


def install() -> None:
    register_model("AWS::Cognito::UserPool", "cognito-idp", _user_pool)
    register_model("AWS::Cognito::UserPoolClient", "cognito-idp", _user_pool_client)
    register_model("AWS::Cognito::UserPoolDomain", "cognito-idp", _user_pool_domain)
    initiate = models.CognitoIdpBackend.initiate_auth
    respond = models.CognitoIdpBackend.respond_to_auth_challenge

    def initiate_auth(self: Any, client_id: str, auth_flow: str, auth_parameters: dict[str, str]) -> dict[str, Any]:
        answer: dict[str, Any] = initiate(self, client_id, auth_flow, auth_parameters)
        if auth_flow != "USER_SRP_AUTH" or answer.get("ChallengeName") != "PASSWORD_VERIFIER":
            return answer
        parameters = answer["ChallengeParameters"]
        username, pool = self.sessions[answer["Session"]]
        user = self.admin_get_user(pool.id, username)
        challenge = SrpChallenge(pool.id, parameters["USER_ID_FOR_SRP"], user.password or "", auth_parameters["SRP_A"])
        _CHALLENGES[challenge.secret_block] = (answer["Session"], challenge)
        parameters.update(
            SALT=challenge.salt, SRP_B=format(challenge.b_value, "x"), SECRET_BLOCK=challenge.secret_block
        )
        return answer

    def respond_to_auth_challenge(self: Any, session: str, client_id: str, challenge_name: str,
                                  challenge_responses: dict[str, str]) -> dict[str, Any]:  # fmt: skip
        if challenge_name == "PASSWORD_VERIFIER":
            block = challenge_responses.get("PASSWORD_CLAIM_SECRET_BLOCK", "")
            found = _CHALLENGES.pop(block, None)
            if found is None or not found[1].valid(challenge_responses.get("PASSWORD_CLAIM_SIGNATURE", ""),
                                                    challenge_responses.get("TIMESTAMP", "")):  # fmt: skip
                raise NotAuthorizedError("Incorrect username or password.")
            # moto finds the session by the secret block it made itself.
            challenge_responses = {**challenge_responses, "PASSWORD_CLAIM_SECRET_BLOCK": found[0]}
        answer: dict[str, Any] = respond(self, session, client_id, challenge_name, challenge_responses)
        return answer

    models.CognitoIdpBackend.initiate_auth = initiate_auth
    models.CognitoIdpBackend.respond_to_auth_challenge = respond_to_auth_challenge


def _backend(account: str, region: str) -> Any:
    return models.cognitoidp_backends[account][region]


# CloudFormation properties moto's CreateUserPool takes as they are (the API's names).
_POOL_PROPERTIES = ("Policies", "LambdaConfig", "AutoVerifiedAttributes", "AliasAttributes", "UsernameAttributes",
                    "MfaConfiguration", "DeviceConfiguration", "EmailConfiguration", "AdminCreateUserConfig",
                    "UserPoolAddOns", "UsernameConfiguration", "AccountRecoverySetting", "DeletionProtection",
                    "UserPoolTier", "Schema", "UserPoolTags", "VerificationMessageTemplate")  # fmt: skip


def _user_pool(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    config = {key: properties[key] for key in _POOL_PROPERTIES if key in properties}
    pool = _backend(account, region).create_user_pool(properties.get("UserPoolName") or name, config)
    if "SOFTWARE_TOKEN_MFA" in properties.get("EnabledMfas", []):
        pool.token_mfa_config = {"Enabled": True}
    provider = f"cognito-idp.{region}.amazonaws.com/{pool.id}"
    return pool.id, {"Arn": pool.arn, "ProviderName": provider, "ProviderURL": f"https://{provider}",
                     "UserPoolId": pool.id}  # fmt: skip


_CLIENT_PROPERTIES = ("RefreshTokenValidity", "AccessTokenValidity", "IdTokenValidity", "TokenValidityUnits",
                      "ReadAttributes", "WriteAttributes", "ExplicitAuthFlows", "SupportedIdentityProviders",
                      "CallbackURLs", "LogoutURLs", "DefaultRedirectURI", "AllowedOAuthFlows", "AllowedOAuthScopes",
                      "AllowedOAuthFlowsUserPoolClient", "PreventUserExistenceErrors",
                      "EnableTokenRevocation")  # fmt: skip


def _user_pool_client(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    pool_id = getattr(properties["UserPoolId"], "id", properties["UserPoolId"])  # moto's Ref may give the model
    config = {"ClientName": properties.get("ClientName") or name,
              **{key: properties[key] for key in _CLIENT_PROPERTIES if key in properties}}  # fmt: skip
    client = _backend(account, region).create_user_pool_client(pool_id, bool(properties.get("GenerateSecret")), config)
    return client.id, {"ClientId": client.id, "Name": config["ClientName"], "ClientSecret": client.secret or ""}


def _user_pool_domain(properties: dict[str, Any], account: str, region: str, name: str) -> tuple[str, dict[str, str]]:
    pool_id = getattr(properties["UserPoolId"], "id", properties["UserPoolId"])
    domain = _backend(account, region).create_user_pool_domain(pool_id, properties["Domain"], None)
    return domain.domain, {"CloudFrontDistribution": f"{domain.domain}.auth.{region}.amazoncognito.com"}
