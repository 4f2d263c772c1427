// sdk.js - runs a list of operations against the payments service with the official Stripe Node.js library.
//
// Usage: node sdk.js < request.json > results.json
//   request: {"config": {"api": "http://127.0.0.1:PORT", "key": "sk_test_...",
//             "maxNetworkRetries": N, "apiVersion": null | "..."}, "ops": [OP, ...]}
//   apiVersion null keeps the library's own (stripe-node sends it as Stripe-Version on
//   every request either way).
//   OP is one of
//     {"op": "create", "resource": "charges", "params": {...}, "idempotencyKey": "..."}
//     {"op": "retrieve" | "del", "resource": ..., "id": "..."}
//     {"op": "capture", "resource": "charges", "id": "...", "params": {...}, "idempotencyKey": "..."}
//     {"op": "update", "resource": ..., "id": "...", "params": {...}, "idempotencyKey": "..."}
//     {"op": "list", "resource": ..., "params": {...}}        every item, by auto-pagination
//     {"op": "constructEvent", "payload": "...", "header": "...", "secret": "..."}
//   Each result is {"ok": object, "requestId", "replayed"} or {"error": {...}}: the
//   error's class, its Stripe fields and the response headers the SDK saw.
// tests/integration/test_stripe_sdk.py drives it; stripe-python has the same driver (sdk.py).
'use strict';

const Stripe = require('stripe');

function errorOf(e) {
	const headers = e.headers || {};
	return {
		class: e.type || (e.constructor && e.constructor.name),
		type: e.rawType || null,
		code: e.code || null,
		decline_code: e.decline_code || (e.raw && e.raw.decline_code) || null,
		charge: (e.raw && e.raw.charge) || null,
		param: e.param || null,
		status: e.statusCode || null,
		requestId: e.requestId || null,
		shouldRetry: headers['stripe-should-retry'] || null,
		message: e.message,
	};
}

async function run(stripe, op) {
	const resource = op.resource ? stripe[op.resource] : null;
	const opts = op.idempotencyKey ? { idempotencyKey: op.idempotencyKey } : undefined;
	let obj;

	switch (op.op) {
	case 'create':
		obj = await resource.create(op.params || {}, opts);
		break;
	case 'retrieve':
		obj = await resource.retrieve(op.id);
		break;
	case 'capture':
		obj = await resource.capture(op.id, op.params || {}, opts);
		break;
	case 'update':
		obj = await resource.update(op.id, op.params || {}, opts);
		break;
	case 'del':
		obj = await resource.del(op.id);
		break;
	case 'list': {
		const ids = [];
		for await (const item of resource.list(op.params || {}))
			ids.push(item.id);
		return { ok: ids };
	}
	case 'constructEvent': {
		const event = stripe.webhooks.constructEvent(op.payload, op.header, op.secret);
		return { ok: event };
	}
	default:
		throw new Error('sdk.js: unknown op ' + op.op);
	}
	const res = obj.lastResponse || {};
	const headers = res.headers || {};
	return {
		ok: obj,
		requestId: res.requestId || null,
		replayed: headers['idempotent-replayed'] || null,
		stripeVersion: headers['stripe-version'] || null,
	};
}

async function main() {
	const chunks = [];
	for await (const chunk of process.stdin)
		chunks.push(chunk);
	const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
	const api = new URL(request.config.api);
	const stripe = new Stripe(request.config.key, {
		host: api.hostname,
		port: api.port,
		protocol: api.protocol.replace(':', ''),
		maxNetworkRetries: request.config.maxNetworkRetries ?? 0,
		...(request.config.apiVersion ? { apiVersion: request.config.apiVersion } : {}),
		timeout: 20000,
		telemetry: false,
	});
	const results = [];
	for (const op of request.ops) {
		try {
			results.push(await run(stripe, op));
		} catch (e) {
			if (!(e instanceof Error) || (!e.type && !e.rawType))
				throw e;
			results.push({ error: errorOf(e) });
		}
	}
	process.stdout.write(JSON.stringify(results));
}

main().catch((e) => {
	console.error(e && e.stack ? e.stack : e);
	process.exit(1);
});
