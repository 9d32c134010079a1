#!/usr/bin/env bash
# `make test`: formatting, go vet and staticcheck, then every test with the
# race detector (the end-to-end tests of the real binary included, and the
# posthog-node compatibility tests when Node.js is here), and at the end
# every skipped test with its reason, so a green run cannot hide a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
# A version the Go module proxy serves; `go run` caches the build.
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2

echo "== gofmt"
# shellcheck disable=SC2046 # one argument per file name is the point
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './e2e/sdk/*'))
if [ -n "$unformatted" ]; then
	echo "these files are not gofmt-formatted (run make fmt):"
	echo "$unformatted"
	exit 1
fi

echo "== go vet"
$GO vet ./...

echo "== staticcheck"
$GO run "$STATICCHECK" ./...

# posthog-node 5.x needs Node.js >= 20.20 (or >= 22.22). With such a node
# and npm, install e2e/sdk's locked packages (as .ci/run does) so the SDK
# tests run; otherwise they skip, and the list at the end says why.
node_ok() {
	command -v node >/dev/null 2>&1 || return 1
	node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit((a==20&&b>=20)||(a==22&&b>=22)||a>22?0:1)'
}
if [ -f e2e/sdk/package.json ] && node_ok && command -v npm >/dev/null 2>&1; then
	if [ ! -f e2e/sdk/node_modules/.package-lock.json ] || [ e2e/sdk/package-lock.json -nt e2e/sdk/node_modules/.package-lock.json ]; then
		echo "== npm ci (e2e/sdk, for the posthog-node tests)"
		(cd e2e/sdk && npm ci --no-audit --no-fund) || echo "npm ci failed; the posthog-node tests will skip"
	fi
fi

echo "== go test -race ./..."
$GO test -race -count=1 -timeout 20m -json ./... | $GO run ./scripts/testreport
