// A real OpenID Connect provider (oidc-provider, OpenID Certified) for the SSO tests, on loopback.
//
//   PORT=9xxx CLIENT_ID=... CLIENT_SECRET=... REDIRECT_URI=http://.../callback/ node provider.mjs
//
// No login page: the test says who signs in next (POST /_test/state {"person": {...claims},
// "amr": [...], "acr": "...", "tamper": null | "wrong-nonce" | "expired"}) and the interaction
// completes at once (login and consent). "tamper" re-signs the ID token the token endpoint
// answers with a forged nonce, or with an expiry in the past (`finish`, with the provider's key).
import http from 'node:http';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const KID = 'trc-test-key';
const jwk = { ...(await jose.exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' };

const state = { person: null, amr: ['pwd'], acr: undefined, tamper: null };
const people = new Map();

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.CLIENT_ID,
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'given_name', 'family_name'],
    groups: ['groups'],
  },
  // Scope claims in the ID token too (as Okta and Entra ID can be set up to do).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  cookies: { keys: ['trc-test-cookie-key'] },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const person = people.get(sub);
    if (!person) return undefined;
    return { accountId: sub, claims: async () => ({ ...person, sub }) };
  },
});

function readJson(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => { try { resolve(JSON.parse(data || '{}')); } catch (e) { reject(e); } });
  });
}

// The ID token as the token endpoint answers it, re-signed with the provider's key: with the
// sign-in's amr/acr (oidc-provider releases them only on request through the claims parameter,
// which it does not support here), and tampered with when the test asks.
async function finish(idToken) {
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (!claims.amr && state.amr) claims.amr = state.amr;
  if (!claims.acr && state.acr) claims.acr = state.acr;
  if (state.tamper === 'wrong-nonce') claims.nonce = 'forged-nonce';
  if (state.tamper === 'expired') { claims.iat = now - 7200; claims.exp = now - 3600; }
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: KID }).sign(privateKey);
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/_test/state' && ctx.method === 'POST') {
    const body = await readJson(ctx.req);
    Object.assign(state, { amr: ['pwd'], acr: undefined, tamper: null }, body);
    if (state.person) people.set(state.person.sub, state.person);
    ctx.body = { ok: true };
    return;
  }
  if (ctx.path === '/favicon.ico') { ctx.status = 204; return; }
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const person = state.person;
    if (!person) { ctx.status = 400; ctx.body = 'The test named nobody to sign in.'; return; }
    const grant = new provider.Grant({ accountId: person.sub, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    const login = { accountId: person.sub, amr: state.amr };
    if (state.acr) login.acr = state.acr;
    const result = { login, consent: { grantId } };
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
    return;
  }
  await next();
  if (ctx.path === '/token' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await finish(ctx.body.id_token) };
  }
});

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
