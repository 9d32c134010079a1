// compat.mjs drives an unmodified posthog-node against a hogrelay agent. It is
// run by e2e/sdk_test.go, which starts the agent and a fake PostHog, and checks
// what this script reports and what arrived upstream.
//
//   node compat.mjs <input.json> <output.json>
//
// input.json: {host, projectKey, personalKey, flagKeys, subjects, eventsFor,
// captures}; see sdk_test.go. Two clients talk to the agent at host:
//
//   - local:  personalApiKey set, so posthog-node polls the agent's
//             /flags/definitions and evaluates every flag itself
//             (onlyEvaluateLocally: true, never asking /flags);
//   - remote: no personalApiKey, so every flag question is a POST /flags/
//             that the agent answers from its own local evaluation.
//
// Every flag value and payload of every subject is computed with both and
// written to output.json, with the HTTP requests each client made (through
// posthog-node's public `fetch` option, which only observes them).

import { readFileSync, writeFileSync } from 'node:fs'
import { PostHog } from 'posthog-node'

const [inputPath, outputPath] = process.argv.slice(2)
if (!inputPath || !outputPath) {
  console.error('usage: node compat.mjs <input.json> <output.json>')
  process.exit(2)
}
const input = JSON.parse(readFileSync(inputPath, 'utf8'))

// JSON has no undefined; posthog-node uses it for "no answer".
const UNDEFINED = '<undefined>'
const enc = (v) => (v === undefined ? UNDEFINED : v)

const errors = []
function observed() {
  const log = []
  const wrapped = async (url, options) => {
    const entry = { method: options?.method ?? 'GET', url: String(url) }
    try {
      const res = await fetch(url, options)
      entry.status = res.status
      return res
    } catch (e) {
      entry.error = String(e)
      throw e
    } finally {
      log.push(entry)
    }
  }
  return { log, fetch: wrapped }
}

const localObs = observed()
const remoteObs = observed()

const common = {
  host: input.host,
  flushAt: 50,
  flushInterval: 500,
  requestTimeout: 20000,
  featureFlagsPollingInterval: 600000,
}
const local = new PostHog(input.projectKey, {
  ...common,
  personalApiKey: input.personalKey,
  fetch: localObs.fetch,
})
const remote = new PostHog(input.projectKey, { ...common, fetch: remoteObs.fetch })
for (const [name, client] of [['local', local], ['remote', remote]]) {
  client.on('error', (err) => errors.push(`${name}: ${err?.stack ?? err}`))
}

const ready = await local.waitForLocalEvaluationReady(30000)
if (!ready) {
  console.error('posthog-node did not load flag definitions from the agent within 30s')
  writeFileSync(outputPath, JSON.stringify({ ready: false, errors, requests: { local: localObs.log } }))
  await Promise.allSettled([local.shutdown(5000), remote.shutdown(5000)])
  process.exit(1)
}

const eventsFor = new Set(input.eventsFor ?? [])

async function evaluate(subject) {
  const { distinctId, personProperties, groups, groupProperties } = subject
  const ctx = { personProperties, groups, groupProperties }
  const sendFeatureFlagEvents = eventsFor.has(distinctId)
  const out = { local: {}, remote: {}, localPayload: {}, remotePayload: {} }
  for (const key of input.flagKeys) {
    out.local[key] = enc(
      await local.getFeatureFlag(key, distinctId, { ...ctx, onlyEvaluateLocally: true, sendFeatureFlagEvents })
    )
    out.remote[key] = enc(await remote.getFeatureFlag(key, distinctId, { ...ctx, sendFeatureFlagEvents }))
    out.localPayload[key] = enc(
      await local.getFeatureFlagPayload(key, distinctId, undefined, { ...ctx, onlyEvaluateLocally: true })
    )
    out.remotePayload[key] = enc(await remote.getFeatureFlagPayload(key, distinctId, undefined, ctx))
  }
  out.localAll = await local.getAllFlags(distinctId, { ...ctx, onlyEvaluateLocally: true })
  out.remoteAll = await remote.getAllFlags(distinctId, ctx)
  return out
}

// A small pool: enough concurrency to be quick, not so much that a slow CI
// machine times requests out.
const results = {}
const queue = [...input.subjects]
await Promise.all(
  Array.from({ length: 8 }, async () => {
    for (let s = queue.shift(); s; s = queue.shift()) {
      try {
        results[s.distinctId] = await evaluate(s)
      } catch (e) {
        errors.push(`evaluating ${s.distinctId}: ${e?.stack ?? e}`)
      }
    }
  })
)

// Events: plain captures with groups and $set, and the person/group calls.
const c = input.captures
local.capture({
  distinctId: c.distinctId,
  event: 'sdk compat plain',
  uuid: c.uuids[0],
  properties: { $set: { plan: 'pro' }, step: 1 },
  groups: { company: c.company },
  sendFeatureFlags: false,
})
remote.capture({
  distinctId: c.distinctId,
  event: 'sdk compat timestamped',
  uuid: c.uuids[1],
  timestamp: new Date(c.timestamp),
  properties: { $set_once: { first_seen: 'sdk' }, nested: { a: [1, 2, 3], b: null } },
  sendFeatureFlags: false,
})
// sendFeatureFlags evaluates flags for the event: locally from the agent's
// definitions on one client, through the agent's /flags on the other.
local.capture({
  distinctId: c.distinctId,
  event: 'sdk compat with local flags',
  uuid: c.uuids[2],
  groups: c.groups ?? undefined,
  sendFeatureFlags: { onlyEvaluateLocally: true, personProperties: c.personProperties, groupProperties: c.groupProperties ?? undefined },
})
remote.capture({
  distinctId: c.distinctId,
  event: 'sdk compat with remote flags',
  uuid: c.uuids[3],
  groups: c.groups ?? undefined,
  sendFeatureFlags: { personProperties: c.personProperties, groupProperties: c.groupProperties ?? undefined },
})
local.identify({ distinctId: c.distinctId, properties: { $set: { email: 'compat@example.com' } } })
local.alias({ distinctId: c.distinctId, alias: c.alias })
local.groupIdentify({ groupType: 'company', groupKey: c.company, properties: { name: 'Compat Inc', seats: 12 } })

await Promise.all([local.shutdown(20000), remote.shutdown(20000)])

writeFileSync(
  outputPath,
  JSON.stringify({
    ready,
    sdkVersion: local.getLibraryVersion(),
    results,
    errors,
    requests: { local: localObs.log, remote: remoteObs.log },
  })
)
