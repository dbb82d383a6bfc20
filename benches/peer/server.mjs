// Peer OpenID Provider for the yihao load benchmark.
//
// This is node-oidc-provider (npm `oidc-provider`, pinned in package.json), configured to do the
// same work the benchmark asks of yihao, so the two can be measured in the same run:
//
//   * client_credentials for `cc-es256`, `cc-eddsa`, `cc-rs256`: JWT access tokens signed with
//     ES256 / EdDSA (Ed25519) / RS256 for the resource https://records.example.gov.cn/
//     (scope `records.read`); the resource is defaulted per client, so requests need no
//     `resource` parameter.
//   * authorization code + PKCE (S256, required) for `rp`, scope `openid profile offline_access`:
//     id_token (RS256), opaque access token (userinfo, introspection), refresh token (always
//     issued to `rp`, even without `prompt=consent`; see issueRefreshToken below; rotated on every
//     use, as yihao does).
//   * a browserless login: a login form (`identifier`, `password`) and a consent form, both plain
//     HTML served by the minimal interaction routes below (devInteractions are off).
//
// Everything is in memory (the Map adapter below); the signing keys (RSA 2048, P-256, Ed25519) are
// generated at every start. All clients authenticate with client_secret_basic and the secret
// `bench-secret-0123456789abcdef`. The only user is identifier `11010519491231002X` with password
// `Bench#2026pass`; the password is checked against a node:crypto scrypt hash (N=2^13, r=8, p=1)
// computed at startup, so every login costs one real password hash, as it does in yihao. Node 20 has
// no argon2; N=2^13 takes about as long here as yihao's argon2id (19 MiB, t=2), so the login flows
// of the two compare the work around the hash, not two different hash costs. It runs on libuv's
// thread pool, as argon2 runs on yihao's blocking pool.
//
// Run (from the repository root, after `cd benches/peer && npm install`):
//
//   PORT=3000 NODE_ENV=production node benches/peer/server.mjs
//
// It listens on 127.0.0.1:$PORT (default 3000) with issuer http://127.0.0.1:$PORT, prints one
// line `ready` on stdout once listening, and logs nothing per request. Plain http only: no
// Secure cookies are set over http and no proxy headers are trusted.

import crypto from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';

import * as jose from 'jose';
import Provider, { errors } from 'oidc-provider';

const PORT = Number.parseInt(process.env.PORT ?? '3000', 10);
const HOST = '127.0.0.1';
const ISSUER = `http://${HOST}:${PORT}`;

const CLIENT_SECRET = 'bench-secret-0123456789abcdef';
const RESOURCE = 'https://records.example.gov.cn/';
const RESOURCE_SCOPE = 'records.read';
// client id -> JWS algorithm of its client_credentials access tokens
const CC_CLIENTS = { 'cc-es256': 'ES256', 'cc-eddsa': 'EdDSA', 'cc-rs256': 'RS256' };

const USER_ID = '11010519491231002X';
const USER_PASSWORD = 'Bench#2026pass';

// ---- password hashing: scrypt N=2^13, r=8, p=1 (8 MiB) ----
const scrypt = promisify(crypto.scrypt);
const SCRYPT = { N: 2 ** 13, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const PASSWORD_SALT = crypto.randomBytes(16);
const PASSWORD_HASH = crypto.scryptSync(USER_PASSWORD, PASSWORD_SALT, 32, SCRYPT);

async function checkCredentials(identifier, password) {
  // Always hash, even for an unknown identifier, so every attempt costs the same.
  const hash = await scrypt(password, PASSWORD_SALT, 32, SCRYPT);
  const passwordOk = crypto.timingSafeEqual(hash, PASSWORD_HASH);
  return passwordOk && identifier === USER_ID;
}

// ---- signing keys, generated at startup ----
async function signingKey(alg, options, kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { ...options, extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const jwks = {
  keys: await Promise.all([
    signingKey('RS256', { modulusLength: 2048 }, 'bench-rs256'),
    signingKey('ES256', {}, 'bench-es256'),
    signingKey('EdDSA', { crv: 'Ed25519' }, 'bench-eddsa'),
  ]),
};

// ---- CSRF token for the interaction forms: HMAC of the interaction uid ----
const CSRF_KEY = crypto.randomBytes(32);
const csrfFor = (uid) => crypto.createHmac('sha256', CSRF_KEY).update(uid).digest('base64url');
function csrfOk(uid, token) {
  const expected = Buffer.from(csrfFor(uid));
  const given = Buffer.from(String(token ?? ''));
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

const ccClient = (clientId) => ({
  client_id: clientId,
  client_secret: CLIENT_SECRET,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: RESOURCE_SCOPE,
});

// ---- storage: an in-memory adapter that keeps everything until it expires ----
// oidc-provider's built-in development adapter is an LRU of 1000 entries: under load it evicts
// codes, grants and tokens still in use, so exchanges fail. This one is a plain Map per model,
// as yihao's in-process store is a plain map.
const stores = new Map();
class MapAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.items = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
    this.items.set(id, { payload, expiresAt });
    if (payload.grantId) {
      const grants = stores.get('__grants') ?? new Map();
      stores.set('__grants', grants);
      const ids = grants.get(payload.grantId) ?? [];
      ids.push([this.items, id]);
      grants.set(payload.grantId, ids);
    }
    if (payload.uid) {
      const uids = stores.get('__uids') ?? new Map();
      stores.set('__uids', uids);
      uids.set(payload.uid, id);
    }
  }

  async find(id) {
    const item = this.items.get(id);
    if (!item) return undefined;
    if (item.expiresAt !== undefined && item.expiresAt <= Date.now()) {
      this.items.delete(id);
      return undefined;
    }
    return item.payload;
  }

  async findByUid(uid) {
    const id = stores.get('__uids')?.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const item = this.items.get(id);
    if (item) item.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    const grants = stores.get('__grants');
    for (const [items, id] of grants?.get(grantId) ?? []) items.delete(id);
    grants?.delete(grantId);
  }
}
// Expired entries go once a minute, so memory stays bounded under a long run.
setInterval(() => {
  const now = Date.now();
  for (const [name, items] of stores) {
    if (name.startsWith('__')) continue;
    for (const [id, item] of items) {
      if (item.expiresAt !== undefined && item.expiresAt <= now) items.delete(id);
    }
  }
}, 60_000).unref();

const configuration = {
  adapter: MapAdapter,
  clients: [
    ...Object.keys(CC_CLIENTS).map(ccClient),
    {
      client_id: 'rp',
      client_secret: CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: ['http://127.0.0.1:9/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: 'RS256',
    },
  ],
  jwks,
  cookies: {
    // Fixed keys for signed cookies; over plain http koa sets no Secure flag.
    keys: ['bench-cookie-key-5f0c9a1e7b3d4c2a8e6f'],
  },
  scopes: ['openid', 'offline_access', RESOURCE_SCOPE],
  claims: { openid: ['sub'], profile: ['name'] },
  pkce: { required: () => true },
  responseTypes: ['code'],
  // Lifetimes as in yihao's config/default.toml (set explicitly, which also keeps oidc-provider
  // from printing a "default ttl" notice to stdout the first time each is used).
  ttl: {
    AccessToken: 900,
    AuthorizationCode: 60,
    ClientCredentials: 900,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 3600,
    Session: 12 * 3600,
    Grant: 30 * 24 * 3600,
  },
  // oidc-provider drops `offline_access` from an authorization request that lacks `prompt=consent`
  // (OIDC Core 11), while yihao honours it. So that the benchmark can send the same authorize URL to
  // both, a client that may use the refresh_token grant (only `rp`) always gets a refresh token at
  // the code exchange, and its tokens are not bound to the login session (as with offline_access).
  // With `prompt=consent` in the URL the scope keeps `offline_access` and the result is the same.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async (ctx, token) => !ctx.oidc.client.grantTypeAllowed('refresh_token')
    && !token.scopes.has('offline_access'),
  // Rotate on every use (oidc-provider's default rotates only after 70% of the TTL), as yihao does.
  rotateRefreshToken: () => true,
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return { sub, name: `Bench User ${sub}` };
      },
    };
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // A client may introspect only its own tokens.
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // The client_credentials clients get the records resource without asking for it; `rp` gets
      // no resource, so its access token stays opaque and is good at userinfo.
      defaultResource: async (_ctx, client, oneOf) => {
        if (oneOf) return oneOf;
        return client.clientId in CC_CLIENTS ? RESOURCE : undefined;
      },
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
        const alg = CC_CLIENTS[client.clientId];
        if (resourceIndicator !== RESOURCE || !alg) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 900,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false;
// Only unexpected failures are logged (stderr); nothing is logged for ordinary requests.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

// ---- minimal interaction routes (no koa, no framework) ----
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
${body}
</body></html>
`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

const hidden = (uid) => `<input type="hidden" name="interaction" value="${esc(uid)}">
<input type="hidden" name="csrf" value="${esc(csrfFor(uid))}">`;

function loginPage(res, uid, status = 200, error = '') {
  page(res, status, 'Sign in', `<h1>Sign in</h1>
${error ? `<p class="error">${esc(error)}</p>\n` : ''}<form method="post" action="/interaction/${esc(uid)}/login">
${hidden(uid)}
<label for="identifier">Identifier</label>
<input type="text" id="identifier" name="identifier" autocomplete="username" required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`);
}

function consentPage(res, uid, clientId, scope) {
  page(res, 200, 'Authorize', `<h1>Authorize ${esc(clientId)}</h1>
<p>Requested scope: ${esc(scope ?? '')}</p>
<form method="post" action="/interaction/${esc(uid)}/confirm">
${hidden(uid)}
<button type="submit">Allow</button>
</form>`);
}

function readForm(req, limit = 16 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw Object.assign(new Error('interaction mismatch'), { status: 400 });
  const { prompt, params } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') return loginPage(res, uid);
    if (prompt.name === 'consent') return consentPage(res, uid, params.client_id, params.scope);
    throw Object.assign(new Error(`unsupported prompt ${prompt.name}`), { status: 400 });
  }
  if (req.method !== 'POST') throw Object.assign(new Error('method not allowed'), { status: 405 });

  const form = await readForm(req);
  if (form.get('interaction') !== uid || !csrfOk(uid, form.get('csrf'))) {
    throw Object.assign(new Error('bad csrf token'), { status: 403 });
  }

  if (action === 'login' && prompt.name === 'login') {
    const identifier = form.get('identifier') ?? '';
    if (!(await checkCredentials(identifier, form.get('password') ?? ''))) {
      return loginPage(res, uid, 401, 'Wrong identifier or password.');
    }
    return provider.interactionFinished(req, res, { login: { accountId: identifier } }, {
      mergeWithLastSubmission: false,
    });
  }

  if (action === 'confirm' && prompt.name === 'consent') {
    const { details: missing } = prompt;
    const { grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const savedId = await grant.save();
    const consent = {};
    if (!grantId) consent.grantId = savedId;
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }

  throw Object.assign(new Error('unexpected interaction step'), { status: 400 });
}

const providerCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm))?$/;

const server = http.createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  const m = INTERACTION.exec(path);
  if (!m) {
    providerCallback(req, res);
    return;
  }
  interaction(req, res, m[1], m[2]).catch((err) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const status = err.status ?? err.statusCode ?? 500;
    if (status >= 500) console.error('interaction error', err);
    const message = status < 500 ? err.error_description ?? err.message : 'internal error';
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${message}\n`);
  });
});

server.listen(PORT, HOST, () => {
  process.stdout.write('ready\n');
});
