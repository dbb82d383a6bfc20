// A department's web system that signs people in through yihao, with openid-client 6 and Express 5.
//
// - sign-in with the authorization code flow, PKCE (S256), state and nonce, client_secret_basic;
//   openid-client checks the `iss` of the authorization response (RFC 9207) and the ID token;
// - the person's data read from userinfo; a level asked for as an essential acr claim
//   (/login?level=3) and the acr received checked;
// - RP-initiated logout with id_token_hint and post_logout_redirect_uri;
// - a back-channel logout endpoint (jose verifies the logout token) that destroys the local sessions
//   of the yihao session that ended.
//
// Configuration (environment): YIHAO_ISSUER, CLIENT_ID, CLIENT_SECRET, APP_BASE_URL, SCOPE,
// SESSION_SECRET. The defaults suit the sandbox's `sandbox-web` client (docs/integration/sandbox.md).

import crypto from 'node:crypto'
import express from 'express'
import session from 'express-session'
import * as jose from 'jose'
import * as client from 'openid-client'

const ISSUER = process.env.YIHAO_ISSUER ?? 'http://localhost:8080'
const CLIENT_ID = process.env.CLIENT_ID ?? 'sandbox-web'
const CLIENT_SECRET = process.env.CLIENT_SECRET // from `yihao client create`; never in browser code
const BASE_URL = (process.env.APP_BASE_URL ?? 'http://localhost:3000').replace(/\/$/, '')
const SCOPE = process.env.SCOPE ?? 'openid profile'
const REDIRECT_URI = `${BASE_URL}/callback` // registered exactly, as --redirect-uri
const POST_LOGOUT_URI = `${BASE_URL}/` // registered exactly, as --post-logout-redirect-uri
const ID_TOKEN_ALG = 'RS256' // the client's id_token_signed_response_alg; logout tokens use it too
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

if (!CLIENT_SECRET) throw new Error('CLIENT_SECRET is not set')

// Discovery; openid-client checks that the document's issuer is ISSUER. Plain http is for the
// sandbox on a laptop only: production issuers are https.
const config = await client.discovery(
  new URL(ISSUER),
  CLIENT_ID,
  { id_token_signed_response_alg: ID_TOKEN_ALG },
  client.ClientSecretBasic(CLIENT_SECRET),
  new URL(ISSUER).protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : undefined,
)
const jwks = jose.createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri))

// Server-side sessions, so that a back-channel logout can destroy them. MemoryStore is for one
// process; several use a shared store (Redis, a database).
const store = new session.MemoryStore()
const byYihaoSession = new Map() // yihao sid -> local session ids
const seenJti = new Map() // logout tokens' jti -> exp, so each is accepted once

const app = express()
app.disable('x-powered-by')
app.use(
  session({
    name: 'dept.sid',
    secret: process.env.SESSION_SECRET ?? crypto.randomBytes(32).toString('hex'),
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true, // an idle limit: 30 minutes without a request
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: BASE_URL.startsWith('https://'),
      maxAge: 30 * 60 * 1000,
    },
  }),
)

const esc = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])

function page(res, status, body) {
  res.status(status).type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Department system (Node)</title></head>
<body><h1>Department system (Node + openid-client)</h1>
${body}
</body></html>`)
}

const rows = (obj) =>
  `<table>${Object.entries(obj)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(Array.isArray(v) ? v.join(' ') : v)}</td></tr>`)
    .join('\n')}</table>`

function failed(res, error, description = '') {
  page(
    res,
    400,
    `<p id="status">sign-in failed</p>
${rows({ error, error_description: description })}
<p><a href="/login">Sign in again</a></p>`,
  )
}

const levelOf = (acr) => {
  const m = /^urn:yihao:loa:(\d)$/.exec(acr ?? '')
  return m ? Number(m[1]) : 0
}

app.get('/', (req, res) => {
  const user = req.session.user
  if (!user) {
    return page(
      res,
      200,
      `<p id="status">signed out</p>
<p><a href="/login">Sign in with yihao</a> or <a href="/login?level=3">at level 3</a></p>`,
    )
  }
  page(res, 200, `<p id="status">signed in</p>\n${rows(user)}\n<p><a href="/logout">Sign out</a></p>`)
})

app.get('/login', async (req, res) => {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const level = /^[1-4]$/.test(req.query.level ?? '') ? Number(req.query.level) : 0
  req.session.pending = { verifier, state, nonce, level }
  const parameters = {
    redirect_uri: REDIRECT_URI,
    scope: SCOPE,
    state,
    nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  }
  if (level) {
    // A required level: an essential acr claim (acr_values would be only a wish).
    parameters.claims = JSON.stringify({ id_token: { acr: { essential: true, values: [`urn:yihao:loa:${level}`] } } })
  }
  res.redirect(client.buildAuthorizationUrl(config, parameters).href)
})

app.get('/callback', async (req, res) => {
  const pending = req.session.pending
  delete req.session.pending
  if (!pending) return failed(res, 'no_pending_sign_in', 'start again from /login')
  let tokens
  try {
    // Checks iss (RFC 9207), state and the ID token (signature, iss, aud, exp, nonce); sends the
    // PKCE verifier.
    tokens = await client.authorizationCodeGrant(config, new URL(req.originalUrl, BASE_URL), {
      pkceCodeVerifier: pending.verifier,
      expectedState: pending.state,
      expectedNonce: pending.nonce,
    })
  } catch (e) {
    if (e instanceof client.AuthorizationResponseError) return failed(res, e.error, e.error_description)
    throw e
  }
  const claims = tokens.claims()
  if (levelOf(claims.acr) < pending.level) return failed(res, 'level_too_low', `acr ${claims.acr}`)
  // The person's data (name, masked phone, ...) comes from userinfo, not from the ID token.
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  await new Promise((ok, ko) => req.session.regenerate((e) => (e ? ko(e) : ok()))) // no fixation
  const { sub: _sub, ...data } = info
  req.session.user = {
    sub: claims.sub,
    acr: claims.acr,
    amr: claims.amr ?? [],
    auth_time: claims.auth_time,
    sid: claims.sid,
    ...data,
  }
  req.session.idToken = tokens.id_token // for the logout's id_token_hint only
  if (claims.sid) {
    if (!byYihaoSession.has(claims.sid)) byYihaoSession.set(claims.sid, new Set())
    byYihaoSession.get(claims.sid).add(req.sessionID)
  }
  res.redirect('/')
})

app.get('/logout', (req, res, next) => {
  const idToken = req.session.idToken
  req.session.destroy((e) => {
    if (e) return next(e)
    const parameters = { post_logout_redirect_uri: POST_LOGOUT_URI, client_id: CLIENT_ID }
    // With the hint of the current session yihao signs the person out without asking.
    if (idToken) parameters.id_token_hint = idToken
    res.redirect(client.buildEndSessionUrl(config, parameters).href)
  })
})

// OpenID Connect Back-Channel Logout 1.0 §2.8: verify the logout token, end the sessions, answer 200.
app.post('/backchannel-logout', express.urlencoded({ extended: false }), async (req, res) => {
  res.set('Cache-Control', 'no-store')
  let payload
  try {
    ;({ payload } = await jose.jwtVerify(String(req.body?.logout_token ?? ''), jwks, {
      issuer: ISSUER,
      audience: CLIENT_ID,
      typ: 'logout+jwt',
      algorithms: [ID_TOKEN_ALG],
      requiredClaims: ['iat', 'exp', 'jti'],
      clockTolerance: 30,
    }))
    if (!payload.events || typeof payload.events !== 'object' || !(BACKCHANNEL_EVENT in payload.events))
      throw new Error('not a back-channel logout event')
    if ('nonce' in payload) throw new Error('a logout token has no nonce')
    if (!payload.sid && !payload.sub) throw new Error('neither sid nor sub')
    const now = Date.now() / 1000
    for (const [jti, exp] of seenJti) if (exp + 30 < now) seenJti.delete(jti)
    if (seenJti.has(payload.jti)) throw new Error('this logout token was used already')
    seenJti.set(payload.jti, payload.exp)
  } catch (e) {
    return res.status(400).json({ error: 'invalid_request', error_description: e.message })
  }
  const ids = byYihaoSession.get(payload.sid) ?? new Set()
  byYihaoSession.delete(payload.sid)
  if (!payload.sid) {
    // A token naming only the person: every local session of that sub.
    store.all((_, all) => {
      for (const [id, s] of Object.entries(all ?? {})) if (s.user?.sub === payload.sub) store.destroy(id)
    })
  }
  for (const id of ids) store.destroy(id)
  res.status(200).end()
})

const where = new URL(BASE_URL)
app.listen(Number(where.port || 80), where.hostname, () => console.log(`listening on ${BASE_URL}`))
