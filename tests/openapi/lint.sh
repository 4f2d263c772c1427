#!/usr/bin/env bash
# lint.sh - lints openapi.yaml with Redocly CLI and checks it against the C sources.
#
# Usage: tests/openapi/lint.sh [--install-only]
#   First installs the pinned npm packages of package-lock.json (npm ci), unless
#   node_modules already holds exactly them, so it runs offline once installed.
#   --install-only stops there (the contract tests use it for js-yaml). Then:
#   1. redocly lint with redocly.yaml (recommended-strict, examples validated
#      against their schemas, the headers every response must declare);
#   2. check.mjs: the routes of src/http_server.c, the error rows of src/err.c
#      and the enums of src/charge.c and src/event.c against the spec;
#   3. self-checks: a copy of the spec with a dangling $ref must fail the
#      linter, and a copy without /healthz must fail check.mjs, so a checker
#      that passes everything cannot go unnoticed.
# Exits non-zero on any error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
spec=$repo/openapi.yaml
# No telemetry or update checks: the linter must not need the network.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
redocly=$here/node_modules/.bin/redocly

cd "$here"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "lint.sh: node and npm are needed (Node.js 20.19 or later, for @redocly/cli 2)" >&2
	exit 1
fi
# npm ls exits non-zero when a package is missing or not the pinned version.
if ! npm ls --all >/dev/null 2>&1; then
	npm ci --no-audit --no-fund --prefer-offline
fi
[ "${1:-}" = --install-only ] && exit 0

status=0
echo "== redocly lint openapi.yaml"
# Run from here: .redocly.lint-ignore.yaml names the spec by its path relative to this folder.
"$redocly" lint --config redocly.yaml ../../openapi.yaml || status=1

echo "== openapi.yaml against the sources"
node check.mjs "$spec" "$repo" || status=1

echo "== self-check: broken copies must fail"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "0,/\$ref: '#\/components\/schemas\/Refund'/s//\$ref: '#\/components\/schemas\/NoSuchSchema'/" \
	"$spec" >"$tmp/openapi.yaml"
if cmp -s "$spec" "$tmp/openapi.yaml"; then
	echo "lint.sh: the self-check found no \$ref to Refund to break" >&2
	status=1
elif "$redocly" lint --config redocly.yaml "$tmp/openapi.yaml" >"$tmp/lint.out" 2>&1; then
	echo "lint.sh: redocly passed a spec with a dangling \$ref" >&2
	status=1
elif ! grep -q no-unresolved-refs "$tmp/lint.out"; then
	echo "lint.sh: redocly failed the broken spec, but not for its dangling \$ref:" >&2
	cat "$tmp/lint.out" >&2
	status=1
else
	echo "redocly refuses a dangling \$ref: ok"
fi
node -e '
	const fs = require("fs"), yaml = require("js-yaml");
	const doc = yaml.load(fs.readFileSync(process.argv[1], "utf8"));
	delete doc.paths["/healthz"];
	fs.writeFileSync(process.argv[2], yaml.dump(doc));
' "$spec" "$tmp/no-healthz.yaml"
if node check.mjs "$tmp/no-healthz.yaml" "$repo" >"$tmp/check.out" 2>&1; then
	echo "lint.sh: check.mjs passed a spec without GET /healthz" >&2
	status=1
elif ! grep -q 'GET /healthz' "$tmp/check.out"; then
	echo "lint.sh: check.mjs failed the spec without /healthz, but not for it:" >&2
	cat "$tmp/check.out" >&2
	status=1
else
	echo "check.mjs refuses a spec without GET /healthz: ok"
fi

[ "$status" = 0 ] && echo "openapi.yaml: lint ok" || echo "openapi.yaml: lint FAILED" >&2
exit "$status"
