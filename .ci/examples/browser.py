"""The person's browser for .ci/examples/run.sh: signs in through the integration examples and checks
what they show, with a requests.Session that fills yihao's forms like a person would.

    browser.py CONFIG.json

CONFIG (written by run.sh): issuer, the test person (identifier, password, name, acr), and the apps:
flask, node (login, logout and home paths) and apache (a protected page and mod_auth_openidc's logout
URL), plus the Flask client's credentials for the token checks. Prints one PASS or FAIL line per
check and stops at the first failure (exit 1).
"""

import base64
import hashlib
import json
import re
import secrets
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import requests


class Failed(Exception):
    pass


class Page(HTMLParser):
    """The forms, links, meta refresh and <th>/<td> rows of an HTML page."""

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.forms, self.links, self.rows, self.refresh, self.status = [], [], {}, None, None
        self._form = None
        self._cell = None  # ("th"|"td"|"status"|"a", text so far)
        self._th = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                          "id": a.get("id"), "fields": [], "buttons": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["fields"].append((a["name"], a.get("value", ""), a.get("type", "text")))
        elif tag == "button" and self._form is not None:
            self._form["buttons"].append((a.get("name"), a.get("value")))
        elif tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = re.search(r"url=(.+)$", a.get("content", ""), re.I)
            self.refresh = m.group(1).strip() if m else None
        elif tag in ("th", "td"):
            self._cell = [tag, ""]
        elif tag == "p" and a.get("id") == "status":
            self._cell = ["status", ""]
        elif tag == "a" and a.get("href"):
            self._cell = ["a", "", a["href"]]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if self._cell is None or tag not in ("th", "td", "p", "a"):
            return
        kind, text = self._cell[0], self._cell[1].strip()
        if kind == "th" and tag == "th":
            self._th = text
        elif kind == "td" and tag == "td" and self._th is not None:
            self.rows[self._th], self._th = text, None
        elif kind == "status" and tag == "p":
            self.status = text
        elif kind == "a" and tag == "a":
            self.links.append((text, self._cell[2]))
        else:
            return
        self._cell = None

    def form(self, action_suffix):
        for f in self.forms:
            if urlsplit(f["action"]).path.endswith(action_suffix):
                return f
        return None


class Browser:
    def __init__(self, issuer):
        self.http = requests.Session()
        self.issuer = issuer
        self.seen = []  # the yihao pages passed on the way: "login", "consent", ...

    def open(self, url, identifier=None, password=None, stop_at_login=False):
        """GET url and go on like a person: sign in when asked (if given credentials), allow on the
        consent page, act as themselves on the organisation page, confirm a logout, submit a
        form_post page, follow a meta refresh. Returns the last response and its Page."""
        self.seen = []
        response = self.http.get(url, timeout=15)
        for _ in range(12):
            page = Page(response.text)
            here = response.url
            login = page.form("/login")
            if login and any(n == "identifier" for n, _, _ in login["fields"]):
                self.seen.append("login")
                if stop_at_login or identifier is None or self.seen.count("login") > 1:
                    return response, page
                response = self.submit(here, login, identifier=identifier, password=password)
                continue
            consent = page.form("/consent")
            if consent:
                self.seen.append("consent")
                response = self.submit(here, consent, decision="allow")
                continue
            org = page.form("/select-org")
            if org:
                self.seen.append("org")
                response = self.submit(here, org, org="none")
                continue
            confirm = page.form("/logout/confirm")
            if confirm:
                self.seen.append("logout-confirm")
                response = self.submit(here, confirm, decision="logout")
                continue
            post = next((f for f in page.forms if f["id"] == "form-post"), None)
            if post:
                self.seen.append("form_post")
                response = self.submit(here, post)
                continue
            if page.refresh:
                self.seen.append("refresh")
                response = self.http.get(urljoin(here, page.refresh), timeout=15)
                continue
            return response, page
        raise Failed("more than 12 pages without arriving anywhere (last: %s)" % response.url)

    def submit(self, base, form, follow=True, **values):
        data = {name: value for name, value, _ in form["fields"]}
        data.update(values)
        target = urljoin(base, form["action"] or base)
        if form["method"] == "post":
            return self.http.post(target, data=data, timeout=15, allow_redirects=follow)
        return self.http.get(target, params=data, timeout=15, allow_redirects=follow)


# --- the checks -------------------------------------------------------------------------------

def check(label, condition, detail=""):
    if not condition:
        print("FAIL %s%s" % (label, (": " + detail) if detail else ""), flush=True)
        raise Failed(label)
    print("PASS " + label, flush=True)


def excerpt(response):
    text = re.sub(r"<[^>]+>", " ", response.text)
    return "%s %s | %s" % (response.status_code, response.url, " ".join(text.split())[:300])


def signed_in(name, app, browser, person, expect_form):
    """Signs in at `app`; returns the claims the app shows."""
    response, page = browser.open(app["base"] + app["login"], person["identifier"], person["password"])
    shown = "login" in browser.seen
    if expect_form:
        check("%s: the sign-in goes to yihao's login page" % name, shown, excerpt(response))
    else:
        check("%s: single sign-on, no password asked again" % name, not shown, excerpt(response))
    rows = page.rows
    sub = rows.get(app["sub_row"])
    check("%s: back at the app, signed in (sub shown)" % name,
          response.url.startswith(app["base"]) and bool(sub), excerpt(response))
    check("%s: acr is %s" % (name, person["acr"]), rows.get(app["acr_row"]) == person["acr"],
          "shown: %r" % rows.get(app["acr_row"]))
    check("%s: name from userinfo is %s" % (name, person["name"]),
          rows.get(app["name_row"]) == person["name"], "shown: %r" % rows.get(app["name_row"]))
    return rows


def signed_out_by_backchannel(name, app, browser, wait=10.0):
    """Polls the app until it no longer knows the person (the logout token arrived)."""
    deadline = time.time() + wait
    while True:
        response = browser.http.get(app["base"] + app["home"], timeout=15, allow_redirects=False)
        page = Page(response.text)
        if app.get("protected"):
            # mod_auth_openidc: a protected page now sends the browser back to yihao.
            out = response.status_code in (302, 303) and \
                urlsplit(response.headers.get("location", "")).path.endswith("/authorize")
        else:
            out = page.status == "signed out"
        if out or time.time() > deadline:
            check("%s: back-channel logout ended its session" % name, out, excerpt(response))
            return
        time.sleep(0.3)


def yihao_session_gone(browser, app):
    response, page = browser.open(app["base"] + app["login"], stop_at_login=True)
    check("yihao: the single sign-on session is gone (its login page shows again)",
          "login" in browser.seen, excerpt(response))


def logout_via(name, app, browser):
    response, page = browser.open(app["base"] + app["logout"])
    check("%s: RP-initiated logout comes back to the app, signed out" % name,
          response.url.startswith(app["base"]) and page.status == "signed out", excerpt(response))
    check("%s: yihao did not ask (id_token_hint named the session)" % name,
          "logout-confirm" not in browser.seen, ",".join(browser.seen))


def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def jwt_parts(token):
    def part(p):
        return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    head, body, _ = token.split(".")
    return part(head), part(body)


def tokens(cfg, browser):
    """The access token checked offline by the Flask example's API, introspection, revocation,
    and forged logout tokens refused."""
    issuer, flask = cfg["issuer"], cfg["apps"]["flask"]
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=5).json()
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    # The code flow as the Flask example's client, catching the code before it reaches the app.
    response = browser.http.get(meta["authorization_endpoint"], params={
        "response_type": "code", "client_id": flask["client_id"],
        "redirect_uri": flask["base"] + "/callback", "scope": "openid profile", "state": state,
        "nonce": secrets.token_urlsafe(16), "code_challenge": challenge,
        "code_challenge_method": "S256"}, allow_redirects=False, timeout=15)
    page = Page(response.text)
    login = page.form("/login")
    if login:
        response = browser.submit(response.url, login, follow=False,
                                  identifier=cfg["person"]["identifier"],
                                  password=cfg["person"]["password"])
    # The consent was given earlier: the answer is the redirect to the client.
    for _ in range(3):
        if response.status_code in (302, 303):
            break
        consent = Page(response.text).form("/consent")
        check("tokens: the authorization goes on to the client", consent is not None,
              excerpt(response))
        response = browser.http.post(urljoin(response.url, consent["action"]), allow_redirects=False,
                                     data={**{n: v for n, v, _ in consent["fields"]},
                                           "decision": "allow"}, timeout=15)
    back = parse_qs(urlsplit(response.headers.get("location", "")).query)
    check("tokens: the authorization response carries code, state and iss (RFC 9207)",
          back.get("state") == [state] and back.get("iss") == [issuer] and "code" in back,
          str(back))
    auth = (flask["client_id"], flask["client_secret"])
    answer = requests.post(meta["token_endpoint"], auth=auth, timeout=10, data={
        "grant_type": "authorization_code", "code": back["code"][0],
        "redirect_uri": flask["base"] + "/callback", "code_verifier": verifier}).json()
    access = answer.get("access_token", "")
    head, claims = jwt_parts(access) if access.count(".") == 2 else ({}, {})
    check("tokens: the access token is a JWT with typ at+jwt, ES256 (RFC 9068)",
          head.get("typ") == "at+jwt" and head.get("alg") == "ES256", str(head))
    check("tokens: its aud is the client id, its acr the session's level",
          claims.get("aud") == flask["client_id"] and claims.get("acr") == cfg["person"]["acr"],
          str(claims))
    id_head, id_claims = jwt_parts(answer["id_token"])
    check("tokens: the ID token carries no name unless the claims parameter asks",
          "name" not in id_claims and id_head.get("alg") == "RS256", str(id_claims))
    bearer = {"Authorization": "Bearer " + access}
    api = requests.get(flask["base"] + "/api/me", headers=bearer, timeout=10)
    check("tokens: the Flask example's API accepts it, checked offline",
          api.status_code == 200 and api.json().get("sub") == claims.get("sub"), api.text)
    forged = access[:-4] + ("AAAA" if not access.endswith("AAAA") else "BBBB")
    api = requests.get(flask["base"] + "/api/me", headers={"Authorization": "Bearer " + forged},
                       timeout=10)
    check("tokens: a token with a broken signature is refused (401)", api.status_code == 401, api.text)
    api = requests.get(flask["base"] + "/api/me", timeout=10,
                       headers={"Authorization": "Bearer " + answer["id_token"]})
    check("tokens: an ID token is not taken for an access token (typ)", api.status_code == 401, api.text)
    intro = requests.post(meta["introspection_endpoint"], auth=auth, data={"token": access},
                          timeout=10).json()
    check("tokens: introspection says active, with the same sub",
          intro.get("active") is True and intro.get("sub") == claims.get("sub"), str(intro))
    revoked = requests.post(meta["revocation_endpoint"], auth=auth, data={"token": access},
                            timeout=10)
    intro = requests.post(meta["introspection_endpoint"], auth=auth, data={"token": access},
                          timeout=10).json()
    check("tokens: after revocation introspection says inactive",
          revoked.status_code == 200 and intro.get("active") is False, str(intro))
    api = requests.get(flask["base"] + "/api/me", headers=bearer, timeout=10)
    check("tokens: an offline check still accepts the revoked token until exp (use introspection "
          "when that matters)", api.status_code == 200, api.text)
    for name in ("flask", "node"):
        app = cfg["apps"][name]
        bad = requests.post(app["base"] + app["backchannel"], data={"logout_token": answer["id_token"]},
                            timeout=10)
        check("%s: an ID token posted as a logout token is refused (400)" % name,
              bad.status_code == 400, "%s %s" % (bad.status_code, bad.text[:200]))


def main():
    cfg = json.load(open(sys.argv[1], encoding="utf-8"))
    person, apps = cfg["person"], cfg["apps"]
    flask, node, apache = apps["flask"], apps["node"], apps["apache"]
    try:
        browser = Browser(cfg["issuer"])
        # Round 1: sign in at the three (SSO after the first), a level the person cannot reach,
        # then log out at Node; Flask and Apache hear it through back-channel logout.
        subs = {}
        subs["flask"] = signed_in("flask", flask, browser, person, expect_form=True)[flask["sub_row"]]
        subs["node"] = signed_in("node", node, browser, person, expect_form=False)[node["sub_row"]]
        subs["apache"] = signed_in("apache", apache, browser, person,
                                   expect_form=False)[apache["sub_row"]]
        check("pairwise sub: each sector (host) gets its own value",
              len(set(subs.values())) == 3, str(subs))
        response, page = browser.open(flask["base"] + "/login?level=3")
        check("flask: an essential acr of loa:3 for a level-2 person ends in "
              "unmet_authentication_requirements", page.rows.get("error") ==
              "unmet_authentication_requirements", excerpt(response))
        logout_via("node", node, browser)
        signed_out_by_backchannel("flask", flask, browser)
        signed_out_by_backchannel("apache", apache, browser)
        yihao_session_gone(browser, flask)

        # Round 2: log out at Flask; Node hears it.
        browser = Browser(cfg["issuer"])
        signed_in("flask", flask, browser, person, expect_form=True)
        signed_in("node", node, browser, person, expect_form=False)
        logout_via("flask", flask, browser)
        signed_out_by_backchannel("node", node, browser)
        yihao_session_gone(browser, node)

        # Round 3: log out at Apache (mod_auth_openidc's logout URL); Flask hears it.
        browser = Browser(cfg["issuer"])
        signed_in("apache", apache, browser, person, expect_form=True)
        signed_in("flask", flask, browser, person, expect_form=False)
        response, page = browser.open(apache["base"] + apache["logout"])
        check("apache: RP-initiated logout comes back to the public page",
              response.url.rstrip("/") == apache["base"] and page.status == "signed out",
              excerpt(response))
        signed_out_by_backchannel("flask", flask, browser)
        yihao_session_gone(browser, flask)

        # Tokens, offline and at introspection; forged logout tokens.
        browser = Browser(cfg["issuer"])
        tokens(cfg, browser)
    except Failed:
        return 1
    except Exception as e:  # a crash is a failure too, with its reason
        print("FAIL the driver stopped: %r" % (e,), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
