#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/ and the public keys in fuzz/keys/ from the inputs the test
suite uses (identifiers of the vectors of docs/identifiers.md, authorize and token requests of tests/oidc.rs, client
assertions signed as the client_secret_jwt and private_key_jwt tests sign them). Run it from fuzz/;
it needs Python's `cryptography`. The private keys exist only while it runs."""
import base64, hashlib, hmac, json, os, pathlib, urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ROOT = pathlib.Path(__file__).parent
NOW = 1_795_795_200
ISSUER = "http://localhost:8080"
SECRET = b"fuzz-client-secret-0123456789abcdef"


def write(target, name, data):
    d = ROOT / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(alg, claims, sign, kid=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


# Identifiers: the vectors of docs/identifiers.md and the shapes the tests use.
for i, text in enumerate([
    "11010519491231002X", "110105194912310021", "11010519491231002x", "110105491231002",
    "440524188001010014", "91350100M000100Y43", "91350100m000100y43", "+86 138-0013-8000",
    "0086 13800138000", "13800138000", "810000199001011234", "830000199001011234",
    "resident_id||11010519491231002X", "passport|CHN|E12345678", "hk_macao_travel_permit||H12345678",
    "taiwan_travel_permit||12345678", "hall", "https://hall.example.gov.cn/cb",
    "http://127.0.0.1:9000/cb", "openid", "offline_access",
]):
    write("identifiers", f"seed{i:02}", text)

# Authorization requests (tests/oidc.rs and src/protocol/authorize.rs).
base = {
    "client_id": "hall", "redirect_uri": "https://hall.example.gov.cn/cb", "response_type": "code",
    "scope": "openid profile", "state": "s1", "nonce": "n1",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256",
}
variants = [
    {}, {"response_mode": "form_post"}, {"response_mode": "fragment"}, {"prompt": "none"},
    {"prompt": "login consent"}, {"max_age": "0"}, {"acr_values": "urn:yihao:loa:3 urn:yihao:loa:2"},
    {"claims": json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:yihao:loa:3"]}}})},
    {"login_hint": "13800138000"}, {"ui_locales": "zh-CN en"}, {"request": "eyJhbGciOiJub25lIn0.e30."},
    {"code_challenge_method": "plain"}, {"redirect_uri": "https://hall.example.gov.cn/cb/../x"},
    {"redirect_uri": "http://127.0.0.1:5555/cb"}, {"scope": "openid offline_access phone"},
    {"response_type": "token"}, {"id_token_hint": "eyJhbGciOiJFUzI1NiJ9.e30.sig"},
]
for i, v in enumerate(variants):
    write("authorize_params", f"seed{i:02}", urllib.parse.urlencode({**base, **v}))
write("authorize_params", "repeated", urllib.parse.urlencode(base) + "&state=again")

# Keys for assertions; the public halves go to fuzz/keys/ for the target.
ec_key = ec.generate_private_key(ec.SECP256R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ed_key = ed25519.Ed25519PrivateKey.generate()
keys = ROOT / "keys"
keys.mkdir(exist_ok=True)
for name, key in [("ec", ec_key), ("rsa", rsa_key), ("ed25519", ed_key)]:
    (keys / f"{name}.pub.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
(keys / "secret").write_bytes(SECRET)


def es256(data):
    r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


signers = {
    "HS256": lambda d: hmac.new(SECRET, d, hashlib.sha256).digest(),
    "HS512": lambda d: hmac.new(SECRET, d, hashlib.sha512).digest(),
    "ES256": es256,
    "RS256": lambda d: rsa_key.sign(d, padding.PKCS1v15(), hashes.SHA256()),
    "PS256": lambda d: rsa_key.sign(d, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()),
    "EdDSA": lambda d: ed_key.sign(d),
}
claims = {"iss": "hall", "sub": "hall", "aud": f"{ISSUER}/token", "exp": NOW + 120, "iat": NOW, "jti": "j1"}
assertions = []
for alg, sign in signers.items():
    assertions.append(jws(alg, claims, sign, kid="k1"))
    assertions.append(jws(alg, {**claims, "exp": NOW + 3600}, sign))
    assertions.append(jws(alg, {**claims, "aud": [ISSUER, "other"], "jti": ""}, sign))
for i, a in enumerate(assertions):
    write("client_assertion", f"seed{i:02}", a)

# Token requests: first line the Authorization header (may be empty), then the form body.
basic = "Basic " + base64.b64encode(b"hall:s%3Acret").decode()
bodies = [
    ("", {"grant_type": "authorization_code", "code": "c0de", "redirect_uri": base["redirect_uri"],
          "client_id": "hall", "code_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"}),
    (basic, {"grant_type": "refresh_token", "refresh_token": "r3fresh", "scope": "openid"}),
    (basic, {"grant_type": "client_credentials", "scope": "read write"}),
    ("", {"grant_type": "client_credentials", "client_id": "hall", "client_secret": "s",
          "resource": "https://api.example.gov.cn/"}),
    ("", {"grant_type": "client_credentials", "client_assertion_type":
          "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertions[0]}),
    ("basic aGFsbDo=", {"token": "t0ken", "token_type_hint": "access_token"}),
]
for i, (auth, body) in enumerate(bodies):
    write("token_request", f"seed{i:02}", auth + "\n" + urllib.parse.urlencode(body))
write("token_request", "resources", "\ngrant_type=client_credentials&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb")
