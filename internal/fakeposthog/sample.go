package fakeposthog

import _ "embed" // SampleFlagDefinitions

// SampleFlagDefinitions is a small, realistic /flags/definitions body for
// `hogrelay dev`, so a newcomer sees local evaluation do something without a
// PostHog account. It is in the exact shape PostHog's /flags/definitions
// serves and covers the features people ask about first:
//
//   - new-onboarding: boolean flag, 50% rollout
//   - checkout-button: multivariate (control/red/green) with JSON-string payloads
//   - internal-tools: person property email icontains "@example.com"
//   - company-beta: group flag on "company" (group_type_mapping {"0":"company"})
//   - power-users-banner: cohort-based, cohort 7 defined in the cohorts map
//
// The document is testdata/sample-flags.json, embedded.
//
//go:embed testdata/sample-flags.json
var SampleFlagDefinitions []byte
