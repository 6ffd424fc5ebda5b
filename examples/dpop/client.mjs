// A DPoP client of the gateway (examples/dpop/Caddyfile), built on
// oauth4webapi and dpop. It gets a token bound to a key it makes, calls
// the API with it, then shows what a thief holding the token, or a proof
// it saw, gets. Environment: ISSUER (default http://localhost:8080), API
// (default <issuer>/hello), AGENT_SECRET.
import * as oauth from 'oauth4webapi'
import * as dpop from 'dpop'

const issuer = new URL(process.env.ISSUER ?? 'http://localhost:8080')
const api = process.env.API ?? new URL('/hello', issuer).href
const insecure = { [oauth.allowInsecureRequests]: true } // http on localhost only

// The gateway may ask for a nonce (use_dpop_nonce): the DPoP handle keeps
// the one it gives, and the request is sent again.
async function withNonce(fn) {
  try {
    return await fn()
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return await fn()
    throw err
  }
}

const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
const client = { client_id: 'agent' }
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)

const token = await withNonce(async () =>
  oauth.processClientCredentialsResponse(as, client,
    await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(process.env.AGENT_SECRET ?? ''), { scope: 'read' }, { DPoP, ...insecure })))
console.log(`token_type ${token.token_type}, cnf.jkt ${await DPoP.calculateThumbprint()}`)

const res = await withNonce(() => oauth.protectedResourceRequest(token.access_token, 'GET', new URL(api), new Headers(), null, { DPoP, ...insecure }))
console.log(`GET ${new URL(api).pathname} with a proof: ${res.status} ${(await res.text()).trim()}`)

// A thief with the token alone.
const stolen = await fetch(api, { headers: { authorization: `Bearer ${token.access_token}` } })
console.log(`the same token as a bearer token: ${stolen.status} ${stolen.headers.get('www-authenticate')}`)

// A proof is good once: one seen on the way cannot be sent again.
const first = await fetch(api, { headers: { authorization: `DPoP ${token.access_token}`, dpop: await dpop.generateProof(keyPair, api, 'GET', undefined, token.access_token) } })
const nonce = first.headers.get('dpop-nonce') ?? undefined
const proof = await dpop.generateProof(keyPair, api, 'GET', nonce, token.access_token)
for (const attempt of ['the proof', 'the same proof again']) {
  const r = await fetch(api, { headers: { authorization: `DPoP ${token.access_token}`, dpop: proof } })
  console.log(`${attempt}: ${r.status} ${r.status === 200 ? (await r.text()).trim() : r.headers.get('www-authenticate')}`)
}
