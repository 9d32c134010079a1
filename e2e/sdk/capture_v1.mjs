// Captures a few events with an unmodified posthog-node in Capture v1 mode
// (POSTHOG_CAPTURE_MODE=v1, set by the Go test) against the agent.
// Usage: node capture_v1.mjs <host> <projectKey> <uuid>...
import { PostHog } from 'posthog-node'

const [host, key, ...uuids] = process.argv.slice(2)
const client = new PostHog(key, { host, flushAt: 100, flushInterval: 0 })
uuids.forEach((uuid, i) => {
  client.capture({
    distinctId: 'v1-user',
    event: 'v1_event',
    uuid,
    properties: { i, $session_id: 'sess-1' },
  })
})
await client.shutdown(20000)
