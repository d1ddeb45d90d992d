// A real OpenID Connect provider for Batchline's OIDC tests: panva's certified
// oidc-provider (pinned in package.json), one confidential client that must use PKCE
// (S256), and a minimal login page that checks a password from a JSON file the test
// writes. The file is read at every sign-in and every findAccount, so a test can remove
// a person or change their groups between two sign-ins.
//
// node server.js <port>     (or PORT=...)
// env: OIDC_REDIRECT_URIS   comma-separated redirect URIs of the client (required)
//      OIDC_ACCOUNTS        path of the accounts file (required):
//                           {"accounts": [{"sub", "preferred_username", "name", "groups", "password"}]}
//      OIDC_CLIENT_ID       default "batchline";  OIDC_CLIENT_SECRET default "test-client-secret"
//      OIDC_OTHER_CLIENT_ID a second client with the same redirect URIs (an ID token for
//                           another audience); default "other-app"
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT || 0);
const host = process.env.OIDC_HOST || '127.0.0.1';
const issuer = `http://${host}:${port}`;
const accountsFile = process.env.OIDC_ACCOUNTS;
const redirectUris = (process.env.OIDC_REDIRECT_URIS || '').split(',').map((u) => u.trim()).filter(Boolean);
if (!port || !accountsFile || redirectUris.length === 0) {
  console.error('usage: OIDC_ACCOUNTS=file OIDC_REDIRECT_URIS=uri[,uri] node server.js <port>');
  process.exit(2);
}
const secret = process.env.OIDC_CLIENT_SECRET || 'test-client-secret';

function accounts() {
  try {
    return JSON.parse(fs.readFileSync(accountsFile, 'utf8')).accounts || [];
  } catch (err) {
    console.error(`cannot read ${accountsFile}: ${err.message}`);
    return [];
  }
}

function client(clientId) {
  return {
    client_id: clientId,
    client_secret: secret,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    require_auth_time: true,
  };
}

const provider = new Provider(issuer, {
  clients: [client(process.env.OIDC_CLIENT_ID || 'batchline'), client(process.env.OIDC_OTHER_CLIENT_ID || 'other-app')],
  // every client, confidential ones too, must send a PKCE S256 challenge
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  // the ID token carries the profile and groups claims (no userinfo round trip needed)
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['batchline-test-provider-cookie-key'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const found = accounts().find((a) => a.sub === sub);
    if (!found) return undefined;
    return {
      accountId: sub,
      async claims() {
        const a = accounts().find((x) => x.sub === sub) || found;
        return { sub, preferred_username: a.preferred_username, name: a.name, groups: a.groups || [] };
      },
    };
  },
});
provider.proxy = false;

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(res, uid, error) {
  res.statusCode = error ? 401 : 200;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(`<!doctype html><html><head><title>Test provider sign-in</title></head><body>
<h1>Test provider sign-in</h1>${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User name <input name="login" id="login" autocomplete="off"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="submit">Sign in</button></form></body></html>`);
}

function body(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; if (data.length > 10000) req.destroy(); });
    req.on('end', () => resolve(new URLSearchParams(data)));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (req.method === 'POST' && req.url.endsWith('/login')) {
    const form = await body(req);
    const who = accounts().find((a) => a.preferred_username === form.get('login') && a.password === form.get('password'));
    if (!who) return loginPage(res, uid, 'Unknown user name or wrong password.');
    return provider.interactionFinished(req, res, { login: { accountId: who.sub } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') return loginPage(res, uid);
  if (prompt.name === 'consent') {
    // the test client is first-party: consent is given without a page
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  res.statusCode = 400;
  return res.end(`unexpected prompt ${prompt.name}`);
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end(`interaction failed: ${err.message}`);
    });
    return;
  }
  callback(req, res);
});
server.listen(port, host, () => console.log(`oidc-provider listening on ${issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
