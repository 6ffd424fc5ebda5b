// A DPoP client built on oauth4webapi and dpop (panva), independent of the
// gateway's code, driven by the integration tests. It reads its task from
// environment variables, does the calls a real client would, and prints
// one JSON object on stdout for the test to check:
//
//   ISSUER         the gateway's issuer (http on loopback is allowed)
//   API            a URL that oauth_protect guards
//   CLIENT_ID, CLIENT_SECRET
//                  a confidential client: client_credentials with DPoP
//   PUBLIC_CLIENT_ID, CALLBACK, STATE, CODE_VERIFIER, REDIRECT_URI
//                  optional: a public client's authorization response
//                  (the test signs in), exchanged for DPoP-bound tokens,
//                  then refreshed
//
// Besides what it did, it prints proofs for the test to present with the
// client_credentials token: each is wrong in one way (another URL, another
// method, a stale iat, another key, or one already used).
import * as oauth from 'oauth4webapi'
import * as dpop from 'dpop'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set`)
  return v
}
const insecure = { [oauth.allowInsecureRequests]: true }

// retry runs fn again once when the server asks for a (new) DPoP nonce,
// which the DPoP handle has then taken from the answer.
async function retry(fn) {
  try {
    return await fn()
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return await fn()
    throw err
  }
}

// callAPI calls the API as oauth4webapi does, retrying for a nonce.
async function callAPI(token, DPoP, url) {
  const res = await retry(() => oauth.protectedResourceRequest(token, 'GET', new URL(url), new Headers(), null, { DPoP, ...insecure }))
  return { status: res.status, body: await res.text() }
}

const b64u = (buf) => Buffer.from(buf).toString('base64url')

// signProof signs a proof by hand, for claims the dpop module sets itself
// (iat).
async function signProof(keyPair, claims) {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', keyPair.publicKey)
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } }
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keyPair.privateKey, Buffer.from(input))
  return `${input}.${b64u(sig)}`
}

async function main() {
  const issuer = new URL(env('ISSUER'))
  const api = env('API')
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }))
  const out = { metadata_algs: as.dpop_signing_alg_values_supported }

  // client_credentials, DPoP-bound.
  const client = { client_id: env('CLIENT_ID') }
  const keyPair = await oauth.generateKeyPair('ES256')
  const DPoP = oauth.DPoP(client, keyPair)
  const cc = await retry(async () =>
    oauth.processClientCredentialsResponse(as, client,
      await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(env('CLIENT_SECRET')), { scope: 'read' }, { DPoP, ...insecure })))
  out.token_type = cc.token_type
  out.access_token = cc.access_token
  out.jkt = await DPoP.calculateThumbprint()
  out.api = await callAPI(cc.access_token, DPoP, api)

  // One more call, by hand with the dpop module, whose proof is then
  // printed to be replayed; with nonces, the one the last answer gave.
  const nonceRes = await fetch(api, { headers: { authorization: `DPoP ${cc.access_token}`, dpop: await dpop.generateProof(keyPair, api, 'GET', undefined, cc.access_token) } })
  const nonce = nonceRes.headers.get('dpop-nonce') ?? undefined
  const used = await dpop.generateProof(keyPair, api, 'GET', nonce, cc.access_token)
  const usedRes = await fetch(api, { headers: { authorization: `DPoP ${cc.access_token}`, dpop: used } })
  out.manual = { status: usedRes.status, body: await usedRes.text() }

  const other = await dpop.generateKeyPair('ES256')
  const now = Math.floor(Date.now() / 1000)
  out.proofs = {
    replayed: used,
    other_url: await dpop.generateProof(keyPair, new URL('/elsewhere', api).href, 'GET', nonce, cc.access_token),
    other_method: await dpop.generateProof(keyPair, api, 'POST', nonce, cc.access_token),
    stale: await signProof(keyPair, { jti: crypto.randomUUID(), htm: 'GET', htu: api, iat: now - 600, nonce, ath: b64u(await crypto.subtle.digest('SHA-256', Buffer.from(cc.access_token))) }),
    other_key: await dpop.generateProof(other, api, 'GET', nonce, cc.access_token),
  }

  // The authorization code flow of a public client, then a refresh.
  if (process.env.PUBLIC_CLIENT_ID) {
    const pub = { client_id: env('PUBLIC_CLIENT_ID') }
    const pubKeys = await oauth.generateKeyPair('ES256')
    const pubDPoP = oauth.DPoP(pub, pubKeys)
    const params = oauth.validateAuthResponse(as, pub, new URL(env('CALLBACK')), env('STATE'))
    const code = await retry(async () =>
      oauth.processAuthorizationCodeResponse(as, pub,
        await oauth.authorizationCodeGrantRequest(as, pub, oauth.None(), params, env('REDIRECT_URI'), env('CODE_VERIFIER'), { DPoP: pubDPoP, ...insecure })))
    out.code = { token_type: code.token_type, api: await callAPI(code.access_token, pubDPoP, api) }

    // The refresh token is bound: another key is refused, the right one
    // refreshes.
    const thiefDPoP = oauth.DPoP(pub, await oauth.generateKeyPair('ES256'))
    try {
      await retry(async () =>
        oauth.processRefreshTokenResponse(as, pub,
          await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), code.refresh_token, { DPoP: thiefDPoP, ...insecure })))
      out.code.stolen_refresh = 'accepted'
    } catch (err) {
      out.code.stolen_refresh = err.error ?? String(err)
    }
    const refreshed = await retry(async () =>
      oauth.processRefreshTokenResponse(as, pub,
        await oauth.refreshTokenGrantRequest(as, pub, oauth.None(), code.refresh_token, { DPoP: pubDPoP, ...insecure })))
    out.code.refreshed = { token_type: refreshed.token_type, api: await callAPI(refreshed.access_token, pubDPoP, api) }
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n${err.cause ? JSON.stringify(err.cause) : ''}\n`)
  process.exit(1)
})
