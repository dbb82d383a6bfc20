"""Offline checks of the JWTs yihao sends a department system, with joserfc (Authlib's JOSE library).

- A logout token (OpenID Connect Back-Channel Logout 1.0 §2.6): `typ` logout+jwt, signed like the
  client's ID tokens, iss, aud, iat, exp, jti, the back-channel logout event, sid and/or sub, no nonce.
- An access token (RFC 9068 §4): `typ` at+jwt, ES256 unless the client was registered with another
  algorithm, iss, aud, exp, sub, client_id, scope, acr.

Keys come from yihao's JWKS (discovery's `jwks_uri`), cached, and fetched again when a token names a
key id the cache does not hold (yihao publishes a new key before it signs with it), at most once a
minute.
"""

import threading
import time

import requests
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class TokenError(Exception):
    """A token that must be refused."""


class Verifier:
    def __init__(self, issuer, jwks_uri, id_token_alg="RS256", access_token_alg="ES256", leeway=30):
        self.issuer = issuer
        self._jwks_uri = jwks_uri  # a callable: discovery may not be loaded yet
        self.id_token_alg = id_token_alg  # the client's id_token_signed_response_alg
        self.access_token_alg = access_token_alg  # its access_token_signed_response_alg
        self.leeway = leeway
        self._keys = None
        self._fetched_at = 0.0
        self._seen_jti = {}
        self._lock = threading.Lock()

    def _key_set(self, refresh=False):
        with self._lock:
            age = time.time() - self._fetched_at
            if self._keys is None or age > 3600 or (refresh and age > 60):
                answer = requests.get(self._jwks_uri(), timeout=5)
                answer.raise_for_status()
                self._keys = KeySet.import_key_set(answer.json())
                self._fetched_at = time.time()
            return self._keys

    def _decode(self, raw, alg, typ):
        if not raw:
            raise TokenError("no token")
        try:
            token = jwt.decode(raw, self._key_set(), algorithms=[alg])
        except InvalidKeyIdError:
            token = jwt.decode(raw, self._key_set(refresh=True), algorithms=[alg])
        # The type keeps one kind of token from being accepted as another (RFC 8725 §3.11).
        found = str(token.header.get("typ", "")).lower().removeprefix("application/")
        if found != typ:
            raise TokenError("typ is %r, not %s" % (token.header.get("typ"), typ))
        return token.claims

    def _claims(self, claims, audience, *required):
        options = {name: {"essential": True} for name in ("exp", "iat", *required)}
        options["iss"] = {"essential": True, "value": self.issuer}
        options["aud"] = {"essential": True, "value": audience}
        jwt.JWTClaimsRegistry(leeway=self.leeway, **options).validate(claims)

    def logout_token(self, raw, client_id):
        claims = self._decode(raw, self.id_token_alg, "logout+jwt")
        self._claims(claims, client_id, "jti")
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
            raise TokenError("not a back-channel logout event")
        if "nonce" in claims:
            raise TokenError("a logout token has no nonce")
        if not claims.get("sid") and not claims.get("sub"):
            raise TokenError("neither sid nor sub")
        now = time.time()
        with self._lock:
            for jti, exp in list(self._seen_jti.items()):
                if exp + self.leeway < now:
                    del self._seen_jti[jti]
            if claims["jti"] in self._seen_jti:
                raise TokenError("this logout token was used already")
            self._seen_jti[claims["jti"]] = claims["exp"]
        return claims

    def access_token(self, raw, audience):
        claims = self._decode(raw, self.access_token_alg, "at+jwt")
        self._claims(claims, audience, "sub", "client_id", "jti")
        return claims
