// check.mjs - checks that openapi.yaml and the C sources name the same routes, error codes and enums.
//
// Usage: node tests/openapi/check.mjs SPEC.yaml REPO_ROOT
// Prints one line per disagreement and exits 1 when there is any. It reads:
//   src/http_server.c  the routing table: every "METHOD pattern" is a path and method of the spec
//                      and the reverse; request_malformed / request_too_large from its error hook
//   src/err.c          every {status, type, code} row: code in ErrorCode and in Error<status>
//                      (whose type is that type), and every code of Error<status> in such a row
//   src/charge.c       currencies, test tokens and refund reasons
//   src/event.c        event types
import { readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";

const [, , specPath, root] = process.argv;
if (!specPath || !root) {
	console.error("usage: node check.mjs SPEC.yaml REPO_ROOT");
	process.exit(2);
}
const spec = yaml.load(readFileSync(specPath, "utf8"));
const source = (rel) => readFileSync(join(root, rel), "utf8");
const schemas = spec.components.schemas;
const problems = [];
const problem = (text) => problems.push(text);

function sameSet(what, fromCode, fromSpec) {
	const a = new Set(fromCode), b = new Set(fromSpec);
	for (const x of a)
		if (!b.has(x))
			problem(`${what}: ${JSON.stringify(x)} is in the code but not in the spec`);
	for (const x of b)
		if (!a.has(x))
			problem(`${what}: ${JSON.stringify(x)} is in the spec but not in the code`);
	if (a.size === 0)
		problem(`${what}: found nothing in the code (has its layout changed?)`);
}

/* The C string literals of the NULL-terminated array declared as `name[] = { ... }`. */
function cStrings(text, name) {
	const m = text.match(new RegExp(`${name}\\[\\]\\s*=\\s*\\{([^}]*)\\}`));
	return m ? [...m[1].matchAll(/"([^"]*)"/g)].map((x) => x[1]) : [];
}

// Routes: { "NAME", "METHOD", "pattern", auth, handler }.
const server = source("src/http_server.c");
const table = server.slice(server.indexOf("http_routes[] = {"), server.indexOf("};", server.indexOf("http_routes[] = {")));
const routes = [...table.matchAll(/\{\s*"[^"]*",\s*"([A-Z]+)",\s*"([^"]+)",\s*(true|false)/g)];
const specRoutes = [];
const methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
for (const [path, item] of Object.entries(spec.paths))
	for (const m of methods)
		if (item[m])
			specRoutes.push(`${m.toUpperCase()} ${path}`);
sameSet("route", routes.map((r) => `${r[1]} ${r[2]}`), specRoutes);
// Authenticated routes have the global bearer security; the others say security: [].
for (const [, method, path, auth] of routes) {
	const op = spec.paths[path]?.[method.toLowerCase()];
	if (!op)
		continue;
	const open = Array.isArray(op.security) && op.security.length === 0;
	if (open !== (auth === "false"))
		problem(`route ${method} ${path}: auth is ${auth} in the routing table but the spec says ${open ? "security: []" : "bearerAuth"}`);
}

// Error codes.
const rows = [...source("src/err.c").matchAll(/\{\s*(\d{3}),\s*"([a-z_]+)",\s*"([a-z_]+)"/g)]
	.map((m) => ({ status: m[1], type: m[2], code: m[3] }));
const httpLayer = ["request_malformed", "request_too_large"].filter((c) => server.includes(`"${c}"`));
sameSet("ErrorCode", [...rows.map((r) => r.code), ...httpLayer], schemas.ErrorCode.enum);
const byStatus = {};
for (const r of rows)
	(byStatus[r.status] ??= []).push(r);
for (const [status, list] of Object.entries(byStatus)) {
	const err = schemas[`Error${status}`]?.properties?.error?.properties;
	if (!err) {
		problem(`Error${status}: no such schema, but src/err.c answers ${status}`);
		continue;
	}
	// A status has one type (const), or a few (enum) when its codes differ in class.
	const types = err.type?.const !== undefined ? [err.type.const] : err.type?.enum ?? [];
	for (const r of list)
		if (!types.includes(r.type))
			problem(`Error${status}: type is ${JSON.stringify(types)}, src/err.c says ${r.type} for ${r.code}`);
	if (err.type?.enum)
		sameSet(`Error${status}.type`, [...new Set(list.map((r) => r.type))], err.type.enum);
	sameSet(`Error${status}.code`, list.map((r) => r.code), err.code?.enum ?? []);
}
for (const name of Object.keys(schemas))
	if (/^Error\d{3}$/.test(name) && !byStatus[name.slice(5)])
		problem(`${name}: src/err.c has no row with status ${name.slice(5)}`);

// Enums that the C code owns.
const charge = source("src/charge.c");
sameSet("Currency", cStrings(charge, "charge_currencies"), schemas.Currency.enum);
sameSet("ChargeCreateRequest.source", [...charge.matchAll(/\{\s*"(tok_[A-Za-z]+)",\s*CHARGE_/g)].map((m) => m[1]),
	schemas.ChargeCreateRequest.properties.source.enum);
sameSet("Refund.reason", [...cStrings(charge, "reasons"), null], schemas.Refund.properties.reason.enum);
sameSet("RefundCreateRequest.reason", [...cStrings(charge, "reasons"), null],
	schemas.RefundCreateRequest.properties.reason.enum);
const eventTypes = cStrings(source("src/event.c"), "event_types");
sameSet("EventType", eventTypes, schemas.EventType.enum);
sameSet("EnabledEvents", [...eventTypes, "*"], schemas.EnabledEvents.items.enum);

for (const p of problems)
	console.log(`check.mjs: ${p}`);
if (problems.length) {
	console.log(`check.mjs: ${problems.length} disagreement(s) between ${specPath} and the sources`);
	process.exit(1);
}
console.log(`check.mjs: ${routes.length} routes, ${rows.length} error rows and the enums agree with ${specPath}`);
