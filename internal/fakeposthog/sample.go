package fakeposthog

// SampleFlagDefinitions is a small, realistic /flags/definitions body for
// `hogrelay dev`, so a newcomer sees local evaluation do something without a
// PostHog account. It is in the exact shape PostHog serves (wire contract
// §4.3) and covers the features people ask about first:
//
//   - new-onboarding: boolean flag, 50% rollout
//   - checkout-button: multivariate (control/red/green) with JSON-string payloads
//   - internal-tools: person property email icontains "@example.com"
//   - company-beta: group flag on "company" (group_type_mapping {"0":"company"})
//   - power-users-banner: cohort-based, cohort 7 defined in the cohorts map
var SampleFlagDefinitions = []byte(`{
  "flags": [
    {
      "id": 101,
      "team_id": 1,
      "name": "New onboarding flow",
      "key": "new-onboarding",
      "filters": {
        "groups": [
          {"properties": [], "rollout_percentage": 50, "variant": null}
        ],
        "multivariate": null,
        "aggregation_group_type_index": null,
        "payloads": {}
      },
      "deleted": false,
      "active": true,
      "ensure_experience_continuity": false,
      "version": 1,
      "evaluation_runtime": "all",
      "bucketing_identifier": "distinct_id",
      "evaluation_tags": [],
      "has_encrypted_payloads": false
    },
    {
      "id": 102,
      "team_id": 1,
      "name": "Checkout button colour experiment",
      "key": "checkout-button",
      "filters": {
        "groups": [
          {"properties": [], "rollout_percentage": 100, "variant": null}
        ],
        "multivariate": {
          "variants": [
            {"key": "control", "name": "Blue (control)", "rollout_percentage": 34},
            {"key": "red", "name": "Red", "rollout_percentage": 33},
            {"key": "green", "name": "Green", "rollout_percentage": 33}
          ]
        },
        "aggregation_group_type_index": null,
        "payloads": {
          "control": "{\"color\": \"#1d4aff\"}",
          "red": "{\"color\": \"#f54e00\"}",
          "green": "{\"color\": \"#29a329\"}"
        }
      },
      "deleted": false,
      "active": true,
      "ensure_experience_continuity": false,
      "version": 3,
      "evaluation_runtime": "all",
      "bucketing_identifier": "distinct_id",
      "evaluation_tags": [],
      "has_encrypted_payloads": false,
      "has_experiment": true
    },
    {
      "id": 103,
      "team_id": 1,
      "name": "Internal tools for staff",
      "key": "internal-tools",
      "filters": {
        "groups": [
          {
            "properties": [
              {"key": "email", "type": "person", "value": "@example.com", "operator": "icontains", "negation": false}
            ],
            "rollout_percentage": 100,
            "variant": null
          }
        ],
        "multivariate": null,
        "aggregation_group_type_index": null,
        "payloads": {"true": "{\"tools\": [\"impersonate\", \"debug-panel\"]}"}
      },
      "deleted": false,
      "active": true,
      "ensure_experience_continuity": false,
      "version": 2,
      "evaluation_runtime": "server",
      "bucketing_identifier": "distinct_id",
      "evaluation_tags": [],
      "has_encrypted_payloads": false
    },
    {
      "id": 104,
      "team_id": 1,
      "name": "Beta for enterprise companies",
      "key": "company-beta",
      "filters": {
        "groups": [
          {
            "properties": [
              {"key": "plan", "type": "group", "value": ["enterprise"], "operator": "exact", "group_type_index": 0, "negation": false}
            ],
            "rollout_percentage": 100,
            "variant": null
          }
        ],
        "multivariate": null,
        "aggregation_group_type_index": 0,
        "payloads": {}
      },
      "deleted": false,
      "active": true,
      "ensure_experience_continuity": false,
      "version": 1,
      "evaluation_runtime": "all",
      "bucketing_identifier": "distinct_id",
      "evaluation_tags": [],
      "has_encrypted_payloads": false
    },
    {
      "id": 105,
      "team_id": 1,
      "name": "Banner for power users",
      "key": "power-users-banner",
      "filters": {
        "groups": [
          {
            "properties": [
              {"key": "id", "type": "cohort", "value": 7, "operator": "in", "negation": false}
            ],
            "rollout_percentage": 100,
            "variant": null
          }
        ],
        "multivariate": null,
        "aggregation_group_type_index": null,
        "payloads": {}
      },
      "deleted": false,
      "active": true,
      "ensure_experience_continuity": false,
      "version": 1,
      "evaluation_runtime": "all",
      "bucketing_identifier": "distinct_id",
      "evaluation_tags": [],
      "has_encrypted_payloads": false
    }
  ],
  "group_type_mapping": {"0": "company"},
  "cohorts": {
    "7": {
      "type": "OR",
      "values": [
        {
          "type": "AND",
          "values": [
            {"key": "sessions_last_30_days", "type": "person", "value": 20, "operator": "gte", "negation": false},
            {"key": "plan", "type": "person", "value": ["pro", "enterprise"], "operator": "exact", "negation": false}
          ]
        }
      ]
    }
  }
}`)
