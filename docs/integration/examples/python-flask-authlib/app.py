"""A department's web system that signs people in through yihao, with Flask and Authlib.

What it shows (docs/integration/README.md explains each rule):

- sign-in with the authorization code flow, PKCE (S256), state and nonce, a confidential client
  authenticated with client_secret_basic;
- the `iss` of the authorization response checked (RFC 9207), the ID token checked by Authlib
  (signature from the JWKS, iss, aud, exp, nonce), the claims read from userinfo;
- a level asked for as an essential `acr` claim (`/login?level=3`), and the `acr` received checked;
- RP-initiated logout with `id_token_hint` and `post_logout_redirect_uri`;
- a back-channel logout endpoint that verifies the logout token and ends the local session;
- an API route that accepts yihao's JWT access tokens (RFC 9068), verified offline (tokens.py).

Configuration (environment): YIHAO_ISSUER, CLIENT_ID, CLIENT_SECRET, APP_BASE_URL (where this app is
reached; its redirect URIs hang from it), SCOPE, FLASK_SECRET_KEY. The defaults suit the sandbox's
`sandbox-web` client (docs/integration/sandbox.md).
"""

import os
import secrets
import threading
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from authlib.integrations.flask_client import OAuth, OAuthError
from flask import Flask, abort, jsonify, redirect, render_template_string, request, session
from joserfc.errors import JoseError

from tokens import TokenError, Verifier

ISSUER = os.environ.get("YIHAO_ISSUER", "http://localhost:8080")
CLIENT_ID = os.environ.get("CLIENT_ID", "sandbox-web")
CLIENT_SECRET = os.environ["CLIENT_SECRET"]  # from `yihao client create`; never in front-end code
BASE_URL = os.environ.get("APP_BASE_URL", "http://localhost:3000").rstrip("/")
SCOPE = os.environ.get("SCOPE", "openid profile")
REDIRECT_URI = BASE_URL + "/callback"  # registered exactly, as --redirect-uri
POST_LOGOUT_URI = BASE_URL + "/"  # registered exactly, as --post-logout-redirect-uri
SESSION_IDLE = timedelta(minutes=30)  # keep local sessions short
SESSION_MAX_SECS = 8 * 3600

app = Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)
app.config.update(
    SESSION_COOKIE_HTTPONLY=True,
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_SECURE=BASE_URL.startswith("https://"),
    PERMANENT_SESSION_LIFETIME=SESSION_IDLE,
)

oauth = OAuth(app)
oauth.register(
    "yihao",
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    server_metadata_url=ISSUER + "/.well-known/openid-configuration",
    client_kwargs={
        "scope": SCOPE,
        "code_challenge_method": "S256",
        "token_endpoint_auth_method": "client_secret_basic",
    },
)


def provider():
    """yihao's discovery document, after checking it describes the issuer we trust."""
    meta = oauth.yihao.load_server_metadata()
    if meta.get("issuer") != ISSUER:
        raise RuntimeError("discovery names another issuer: %r" % meta.get("issuer"))
    return meta


verifier = Verifier(ISSUER, lambda: provider()["jwks_uri"])

# Sessions ended by yihao's back-channel logout, by `sid` (and by `sub` for a token without one). One
# process keeps them in memory; several workers or nodes must share them (Redis, the database).
_ended = {}
_ended_lock = threading.Lock()


def level_of(acr):
    """The number N of `urn:yihao:loa:N`, or 0."""
    prefix = "urn:yihao:loa:"
    if isinstance(acr, str) and acr.startswith(prefix) and acr[len(prefix):].isdigit():
        return int(acr[len(prefix):])
    return 0


@app.before_request
def drop_ended_sessions():
    user = session.get("user")
    if not user:
        return
    too_old = time.time() - user["logged_in_at"] > SESSION_MAX_SECS
    with _ended_lock:
        ended = user.get("sid") in _ended or ("sub:" + user["sub"]) in _ended
    if too_old or ended:
        session.clear()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Department system (Flask)</title></head>
<body>
<h1>Department system (Flask + Authlib)</h1>
{% if error %}
  <p id="status">sign-in failed</p>
  <table><tr><th>error</th><td>{{ error }}</td></tr>
  <tr><th>error_description</th><td>{{ description }}</td></tr></table>
  <p>{{ advice }}</p>
  <p><a href="/login">Sign in again</a></p>
{% elif user %}
  <p id="status">signed in</p>
  <table>
  {% for name, value in user.items() if name not in ("logged_in_at",) %}
    <tr><th>{{ name }}</th><td>{{ value }}</td></tr>
  {% endfor %}
  </table>
  <p><a href="/logout">Sign out</a></p>
{% else %}
  <p id="status">signed out</p>
  <p><a href="/login">Sign in with yihao</a> or <a href="/login?level=3">at level 3</a></p>
{% endif %}
</body></html>"""

ADVICE = {
    "access_denied": "You declined to share the data this service asks for.",
    "unmet_authentication_requirements": "Your account cannot reach the level of assurance this "
    "service needs (a verified identity, a second factor). See your personal page at yihao.",
    "login_required": "You are not signed in at yihao.",
    "interaction_required": "yihao needs to ask you something; sign in again without prompt=none.",
    "consent_required": "yihao needs your consent first.",
    "level_too_low": "The level reached is below what this service needs.",
}


def failed(error, description=""):
    return render_template_string(
        PAGE, error=error, description=description, advice=ADVICE.get(error, "")
    ), 400


@app.get("/")
def home():
    return render_template_string(PAGE, user=session.get("user"))


@app.get("/login")
def login():
    params = {}
    level = request.args.get("level", "")
    if level in ("1", "2", "3", "4"):
        # A required level: an essential acr claim (acr_values would be only a wish).
        params["claims"] = (
            '{"id_token":{"acr":{"essential":true,"values":["urn:yihao:loa:%s"]}}}' % level
        )
    session["wanted_level"] = int(level) if level.isdigit() else 0
    return oauth.yihao.authorize_redirect(REDIRECT_URI, **params)


@app.get("/callback")
def callback():
    # RFC 9207: every authorization response from yihao names its issuer (mix-up defence).
    if request.args.get("iss") != provider()["issuer"]:
        abort(400, "the authorization response does not come from the expected issuer")
    wanted = session.pop("wanted_level", 0)
    try:
        # Checks state, sends the PKCE verifier, validates the ID token (signature, iss, aud, exp,
        # nonce). An error response (access_denied, unmet_authentication_requirements, ...) raises.
        token = oauth.yihao.authorize_access_token()
    except OAuthError as e:
        return failed(e.error, e.description or "")
    id_claims = token["userinfo"]  # the validated ID token's claims
    if level_of(id_claims.get("acr")) < wanted:
        return failed("level_too_low", "acr %s" % id_claims.get("acr"))
    # The person's data (name, masked phone, ...) comes from userinfo, not from the ID token.
    info = oauth.yihao.userinfo(token=token)
    if info.get("sub") != id_claims["sub"]:
        abort(502, "userinfo is about someone else")
    session.clear()
    session.permanent = True
    session["user"] = {
        "sub": id_claims["sub"],
        "acr": id_claims.get("acr"),
        "amr": " ".join(id_claims.get("amr", [])),
        "auth_time": id_claims.get("auth_time"),
        "sid": id_claims.get("sid"),
        **{k: v for k, v in info.items() if k != "sub"},
        "logged_in_at": int(time.time()),
    }
    session["id_token"] = token["id_token"]  # for the logout's id_token_hint only
    return redirect("/")


@app.get("/logout")
def logout():
    id_token = session.get("id_token")
    session.clear()
    end_session = provider()["end_session_endpoint"]
    query = {"post_logout_redirect_uri": POST_LOGOUT_URI, "client_id": CLIENT_ID}
    if id_token:
        # With the hint of the current session yihao signs the person out without asking.
        query["id_token_hint"] = id_token
    return redirect(end_session + "?" + urlencode(query))


@app.post("/backchannel-logout")
def backchannel_logout():
    """OpenID Connect Back-Channel Logout 1.0 §2.8: verify, end the session, answer 200."""
    try:
        claims = verifier.logout_token(request.form.get("logout_token", ""), CLIENT_ID)
    except (JoseError, TokenError) as e:
        response = jsonify(error="invalid_request", error_description=str(e))
        response.status_code = 400
        response.headers["Cache-Control"] = "no-store"
        return response
    now = time.time()
    with _ended_lock:
        for key in [k for k, at in _ended.items() if now - at > SESSION_MAX_SECS]:
            del _ended[key]
        _ended[claims["sid"] if claims.get("sid") else "sub:" + claims["sub"]] = now
    return "", 200, {"Cache-Control": "no-store"}


@app.get("/api/me")
def api_me():
    """An API of this department that takes yihao access tokens, checked offline (RFC 9068)."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return jsonify(error="invalid_request"), 401, {"WWW-Authenticate": "Bearer"}
    try:
        claims = verifier.access_token(auth[len("Bearer "):], audience=CLIENT_ID)
    except (JoseError, TokenError) as e:
        return jsonify(error="invalid_token", error_description=str(e)), 401, {
            "WWW-Authenticate": 'Bearer error="invalid_token"'
        }
    return jsonify(sub=claims["sub"], acr=claims.get("acr"), scope=claims.get("scope"))


if __name__ == "__main__":
    where = urlsplit(BASE_URL)
    app.run(host=where.hostname, port=where.port or 80)
