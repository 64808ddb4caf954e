// A real OpenID provider for tests/web/test_oidc_login.py: npm's `oidc-provider`
// (installed by tests/run) on a loopback port chosen by the system.
//
// Usage: node oidc_provider.mjs PACKAGE_DIR CONFIG_JSON
//   CONFIG_JSON: {"clients": [oidc-provider client metadata...],
//                 "accounts": {"<sub>": {"password": "...", "claims": {...}}}}
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} once it serves, then serves
// until stdin closes (so it never outlives the test that started it).
//
// Sign-in is the provider's own interaction flow with a plain form instead of its
// development pages: GET /interaction/UID shows the form, POST /interaction/UID checks the
// account's password and finishes the login; consent is given at once (loadExistingGrant),
// as a company's provider does for its own applications.
import http from 'node:http'
import { pathToFileURL } from 'node:url'
import path from 'node:path'

const [packageDir, configText] = process.argv.slice(2)
const config = JSON.parse(configText)
const { default: Provider } = await import(
  pathToFileURL(path.join(packageDir, 'lib', 'index.js')).href)

const server = http.createServer()
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const issuer = `http://127.0.0.1:${server.address().port}`

function account (sub) {
  const found = config.accounts[sub]
  if (!found) return undefined
  return { accountId: sub, claims: async () => ({ sub, ...found.claims }) }
}

const provider = new Provider(issuer, {
  clients: config.clients,
  claims: { openid: ['sub'], profile: ['preferred_username', 'name'], groups: ['groups'] },
  scopes: ['openid', 'profile', 'groups'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  cookies: { keys: ['tests-only-cookie-key'] },
  findAccount: async (ctx, sub) => account(sub),
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId ||
      ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId)
    if (grantId) return ctx.oidc.provider.Grant.find(grantId)
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId
    })
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '))
    await grant.save()
    return grant
  }
})

async function formOf (req) {
  let body = ''
  for await (const chunk of req) body += chunk
  return new URLSearchParams(body)
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)$/)
  if (!match) return next()
  const details = await provider.interactionDetails(ctx.req, ctx.res)
  if (ctx.method === 'GET') {
    ctx.type = 'html'
    ctx.body = `<form method="post" action="/interaction/${details.uid}">` +
      '<input name="login"><input name="password" type="password"><button>Sign in</button></form>'
    return
  }
  const form = await formOf(ctx.req)
  const sub = form.get('login')
  if (!config.accounts[sub] || config.accounts[sub].password !== form.get('password')) {
    ctx.status = 401
    ctx.body = 'wrong login'
    return
  }
  const target = await provider.interactionResult(ctx.req, ctx.res,
    { login: { accountId: sub } }, { mergeWithLastSubmission: false })
  ctx.status = 303
  ctx.redirect(target)
})

server.on('request', provider.callback())
process.stdout.write(JSON.stringify({ issuer }) + '\n')
process.stdin.resume()
process.stdin.on('end', () => { server.close(); process.exit(0) })
