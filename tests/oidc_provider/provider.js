// A real OpenID Connect provider (node-oidc-provider, a certified implementation) on 127.0.0.1,
// with people and their groups, for the company login tests and the demo.
//
//   node provider.js --port 8170 --client-id rollout-control --client-secret s3cret \
//     --redirect-uri http://127.0.0.1:8000/oidc/callback/ \
//     --post-logout-redirect-uri http://127.0.0.1:8000/login/ [--users users.json] [--test-controls]
//
// People sign in on a plain HTML form (username and password); consent is implied for the one
// client. With --test-controls, POST /_test/users and /_test/mode change people's groups and make
// the provider misbehave the way real providers do (a token signed with the wrong key, expired,
// for another audience or from another issuer, a token endpoint that is slow or drops the
// connection). Every token still leaves over real HTTP; the ID token is re-signed here.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8170' },
    'client-id': { type: 'string', default: 'rollout-control' },
    'client-secret': { type: 'string', default: 'rollout-control-secret' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
    users: { type: 'string' },
    'test-controls': { type: 'boolean', default: false },
  },
});

const issuer = `http://${args.host}:${args.port}`;
const DEFAULT_USERS = args.users ? JSON.parse(readFileSync(args.users, 'utf8')) : {};
let users = structuredClone(DEFAULT_USERS);
let mode = {};

const KID = 'signing-key-1';
const signing = await generateKeyPair('RS256', { extractable: true });
// Same key id, another key: a token signed with it does not verify against the published keys.
const impostor = await generateKeyPair('RS256', { extractable: true });
const privateJwk = { ...(await exportJWK(signing.privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    post_logout_redirect_uris: args['post-logout-redirect-uri'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  jwks: { keys: [privateJwk] },
  cookies: { keys: ['test-provider-cookie-key-not-secret'] },
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 600, Session: 3600, Grant: 3600, Interaction: 600 },
  async findAccount(ctx, id) {
    const person = users[id];
    if (!person) return undefined;
    return {
      accountId: id,
      async claims() {
        const [given, ...family] = (person.name || id).split(' ');
        return {
          sub: id,
          email: person.email,
          email_verified: true,
          name: person.name,
          given_name: given,
          family_name: family.join(' '),
          preferred_username: id,
          groups: person.groups || [],
        };
      },
    };
  },
  // The dashboard is this provider's own first-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
});

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginForm(uid, error = '') {
  return page('Test company sign-in', `${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
  <label>Username <input name="username" autofocus></label>
  <label>Password <input name="password" type="password"></label>
  <button type="submit">Sign in</button>
</form>`);
}

async function readBody(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if ((ctx.get('content-type') || '').includes('application/json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

async function tamper(idToken) {
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  let key = signing.privateKey;
  switch (mode.id_token) {
    case 'expired': claims.iat = now - 7200; claims.exp = now - 3600; break;
    case 'wrong_issuer': claims.iss = 'http://127.0.0.1:1/not-the-provider'; break;
    case 'wrong_audience': claims.aud = 'another-client'; break;
    case 'wrong_nonce': claims.nonce = 'not-the-nonce-we-were-sent'; break;
    case 'wrong_key': key = impostor.privateKey; break;
    default: return idToken;
  }
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' }).sign(key);
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

provider.use(async (ctx, next) => {
  if (args['test-controls'] && ctx.path.startsWith('/_test/') && ctx.method === 'POST') {
    const body = await readBody(ctx);
    if (ctx.path === '/_test/users') {
      users[body.username] = { ...users[body.username], ...body.person };
    } else if (ctx.path === '/_test/mode') {
      mode = body;
    } else if (ctx.path === '/_test/reset') {
      users = structuredClone(DEFAULT_USERS);
      mode = {};
    }
    ctx.body = { users, mode };
    return;
  }
  const interaction = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (interaction) {
    const [, uid, login] = interaction;
    await provider.interactionDetails(ctx.req, ctx.res); // refuses an unknown or expired one
    if (!login) {
      ctx.type = 'html';
      ctx.body = loginForm(uid);
      return;
    }
    const { username, password } = await readBody(ctx);
    const person = users[username];
    if (!person || person.password !== password || person.disabled) {
      ctx.type = 'html';
      ctx.status = 401;
      ctx.body = loginForm(uid, 'Wrong username or password, or the account is disabled.');
      return;
    }
    const result = { login: { accountId: username } };
    ctx.status = 303;
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
    return;
  }
  if (ctx.path === '/token') {
    if (mode.token_delay_ms) await sleep(mode.token_delay_ms);
    if (mode.token_down) {
      ctx.req.socket.destroy();
      return;
    }
  }
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && ctx.body?.id_token) {
    ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
  }
});

provider.listen(Number(args.port), args.host, () => {
  console.log(`OpenID Connect provider ${issuer} ready`);
});
