// flags_remote.mjs drives an unmodified posthog-node with only a project key
// (no personalApiKey: every flag question is a POST /flags/ to the host),
// with the agent as its host. It is run by e2e/sdk_flags_remote_test.go.
//
//   node flags_remote.mjs <input.json> <output.json>
//
// input.json: {host, steps: [{action, ...params}]}. The actions mirror the
// PostHog SDK test harness's adapter actions (CONTRACT.yaml): init,
// get_feature_flag, get_all_flags, capture, flush. output.json: the result of
// each step, and every HTTP request the client made (observed through
// posthog-node's public `fetch` option), with its body when it is text.

import { readFileSync, writeFileSync } from 'node:fs'
import { PostHog } from 'posthog-node'

const [inputPath, outputPath] = process.argv.slice(2)
if (!inputPath || !outputPath) {
  console.error('usage: node flags_remote.mjs <input.json> <output.json>')
  process.exit(2)
}
const input = JSON.parse(readFileSync(inputPath, 'utf8'))
const UNDEFINED = '<undefined>'
const enc = (v) => (v === undefined ? UNDEFINED : v)

const errors = []
const requests = []
const observed = async (url, options) => {
  const entry = { method: options?.method ?? 'GET', url: String(url) }
  if (typeof options?.body === 'string') entry.body = options.body
  try {
    const res = await fetch(url, options)
    entry.status = res.status
    return res
  } catch (e) {
    entry.error = String(e)
    throw e
  } finally {
    requests.push(entry)
  }
}

let client
const clients = []
const results = []
for (const step of input.steps) {
  try {
    switch (step.action) {
      case 'init':
        // As the harness's adapters do: geoip is the caller's choice.
        client = new PostHog(step.api_key, {
          host: input.host,
          flushAt: 100,
          flushInterval: 100000,
          disableGeoip: false,
          requestTimeout: 10000,
          fetch: observed,
        })
        client.on('error', (err) => errors.push(String(err?.stack ?? err)))
        clients.push(client)
        results.push({ success: true })
        break
      case 'get_feature_flag': {
        const opts = {
          personProperties: step.person_properties,
          groups: step.groups,
          groupProperties: step.group_properties,
          sendFeatureFlagEvents: step.send_feature_flag_events ?? true,
        }
        if (step.disable_geoip !== undefined) opts.disableGeoip = step.disable_geoip
        results.push({ success: true, value: enc(await client.getFeatureFlag(step.key, step.distinct_id, opts)) })
        break
      }
      case 'get_all_flags':
        results.push({
          success: true,
          value: await client.getAllFlags(step.distinct_id, {
            personProperties: step.person_properties,
            groups: step.groups,
            groupProperties: step.group_properties,
          }),
        })
        break
      case 'capture':
        client.capture({ distinctId: step.distinct_id, event: step.event, properties: step.properties })
        results.push({ success: true })
        break
      case 'flush':
        await client.flush()
        results.push({ success: true })
        break
      default:
        throw new Error(`unknown action ${step.action}`)
    }
  } catch (e) {
    errors.push(`${step.action}: ${e?.stack ?? e}`)
    results.push({ success: false })
  }
}
await Promise.all(clients.map((c) => c.shutdown(20000)))
writeFileSync(outputPath, JSON.stringify({ results, requests, errors }))
