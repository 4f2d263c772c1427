// server.js - make bench's peer: POST /v1/charges in Node.js (fastify + pg) running bench/limit.pgbench's statement.
//
// Usage (bench/run.sh starts it; make bench installs its packages with npm ci):
//   DATABASE_URL=postgresql://... PEER_API_KEY=sk_... node bench/peer/server.js
//
// Settings (environment):
//   DATABASE_URL     the database holding the bench_limit tables (bench/limit_schema.sql)
//   PEER_API_KEY     the one accepted key: "Authorization: Bearer <key>" (a constant check)
//   PEER_LISTEN      loopback address:port, default 127.0.0.1:18445
//   PEER_WORKERS     cluster workers, default 2
//   PEER_POOL        database connections in all, split over the workers, default 8
//   PEER_USER        the user the charges belong to, default bench
//   PEER_PARENT_PID  when set, the server exits once that process is gone
//
// What a well-written small Node.js service would do for the same API, and no
// more: a Node cluster (one process per core), a pg pool, fastify's JSON body
// parsing with schema validation, and one round trip per request. Every
// request runs the statement of bench/limit.pgbench (read from that file, so
// the limit and the peer run the same SQL): for a new Idempotency-Key it
// writes the idempotency row with the response body, the charge and the
// outbox event, and the reply is 201 with the charge; for a stored key it
// writes nothing and returns the stored status and body (a replay, with
// Idempotent-Replayed: true). Unlike the service it keeps no request
// fingerprint, no API key table, no rate limit, no metrics and no access log.
'use strict';

const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const settings = {
  databaseUrl: process.env.DATABASE_URL,
  apiKey: process.env.PEER_API_KEY,
  listen: process.env.PEER_LISTEN || '127.0.0.1:18445',
  workers: Number(process.env.PEER_WORKERS || 2),
  pool: Number(process.env.PEER_POOL || 8),
  user: process.env.PEER_USER || 'bench',
  parentPid: Number(process.env.PEER_PARENT_PID || 0),
};

function fail(message) {
  process.stderr.write(`peer: ${message}\n`);
  process.exit(2);
}

// splitListen: "host:port" -> { host, port }; only loopback hosts are accepted.
function splitListen(listen) {
  const m = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):(\d+)$/.exec(listen);
  if (!m) fail(`PEER_LISTEN must be a loopback address:port, not ${listen}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

// loadStatement: the SQL of bench/limit.pgbench with each :name turned into a
// positional parameter ($1 for the first name, ...); returns { text, names }.
// The file's comment lines and pgbench meta-commands (\set) are dropped.
function loadStatement() {
  const file = path.join(__dirname, '..', 'limit.pgbench');
  const sql = fs.readFileSync(file, 'utf8').split('\n')
    .filter((line) => !line.startsWith('--') && !line.startsWith('\\'))
    .join('\n').trim().replace(/;$/, '');
  const names = [];
  // ":name" but not the second colon of a "::type" cast.
  const text = sql.replace(/(?<!:):([a-z_]+)/g, (_, name) => {
    if (!names.includes(name)) names.push(name);
    return `$${names.indexOf(name) + 1}`;
  });
  for (const name of names) {
    if (!['user_id', 'idem_key', 'r', 'body'].includes(name)) fail(`${file}: unknown variable :${name}`);
  }
  return { text, names };
}

function errorBody(type, code, message, param) {
  const error = { type, code, message };
  if (param) error.param = param;
  return JSON.stringify({ error });
}

// The request body, as strict as fastify's validator makes cheap: the fields
// of the service's charge request, nothing else.
const chargeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['amount', 'currency', 'source'],
  properties: {
    amount: { type: 'integer', minimum: 1, maximum: 99999999 },
    currency: { type: 'string', pattern: '^[a-z]{3}$' },
    source: { type: 'string', enum: ['tok_visa', 'tok_mastercard', 'tok_amex'] },
    description: { type: 'string', maxLength: 1000 },
    metadata: { type: 'object', maxProperties: 50, additionalProperties: { type: 'string', maxLength: 500 } },
  },
};

async function runWorker() {
  const Fastify = require('fastify');
  const { Pool } = require('pg');
  const { host, port } = splitListen(settings.listen);
  const statement = loadStatement();
  const pool = new Pool({
    connectionString: settings.databaseUrl,
    max: Math.max(1, Math.ceil(settings.pool / settings.workers)),
  });
  const app = Fastify({ logger: false });
  const bearer = `Bearer ${settings.apiKey}`;

  app.get('/healthz', async (_request, reply) => {
    reply.type('application/json');
    return '{"status":"ok"}';
  });

  app.post('/v1/charges', { schema: { body: chargeSchema } }, async (request, reply) => {
    reply.type('application/json');
    if (request.headers.authorization !== bearer) {
      reply.code(401);
      return errorBody('invalid_request_error', 'api_key_invalid', 'Invalid API key.');
    }
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length < 1 || key.length > 255) {
      reply.code(400);
      return errorBody('invalid_request_error', 'parameter_missing', 'Idempotency-Key is required.',
        'Idempotency-Key');
    }
    const b = request.body;
    const r = crypto.randomBytes(12).toString('hex');
    const body = JSON.stringify({
      id: `ch_${r}`,
      object: 'charge',
      amount: b.amount,
      currency: b.currency,
      status: 'succeeded',
      source: b.source,
      description: b.description ?? null,
      metadata: b.metadata ?? {},
      amount_refunded: 0,
      refunded: false,
      failure_code: null,
      decline_code: null,
      created: Math.floor(Date.now() / 1000),
    });
    const values = { user_id: settings.user, idem_key: key, r, body };
    let res;
    try {
      res = await pool.query({
        name: 'charge',
        text: statement.text,
        values: statement.names.map((name) => values[name]),
      });
    } catch (err) {
      process.stderr.write(`peer: ${err.message}\n`);
      reply.code(503);
      return errorBody('api_error', 'database_unavailable', 'The database is unavailable.');
    }
    const row = res.rows[0];
    if (!row) {
      // The key's first request has not committed yet: its row is not in this statement's snapshot.
      reply.code(409).header('Retry-After', '1');
      return errorBody('invalid_request_error', 'idempotency_key_in_use', 'A request with this key is in progress.');
    }
    if (row.created) {
      reply.code(201).header('Idempotent-Replayed', 'false');
      return body;
    }
    reply.code(row.status_code).header('Idempotent-Replayed', 'true');
    return row.response_body;
  });

  const stop = async () => {
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await app.listen({ host, port });
}

function runPrimary() {
  if (!settings.databaseUrl) fail('DATABASE_URL is required');
  if (!settings.apiKey) fail('PEER_API_KEY is required');
  if (!(settings.workers >= 1 && settings.pool >= 1)) fail('PEER_WORKERS and PEER_POOL must be at least 1');
  splitListen(settings.listen);
  loadStatement();

  let stopping = false;
  const stopAll = (code) => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    // Workers that do not finish in time are killed with the primary's exit.
    setTimeout(() => process.exit(code), 3000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers).length === 0) process.exit(code);
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`peer: worker ${worker.process.pid} exited (${signal || code}); stopping\n`);
      stopAll(1);
    }
  });
  process.once('SIGTERM', () => stopAll(0));
  process.once('SIGINT', () => stopAll(0));
  if (settings.parentPid) {
    // Stop by ourselves when whoever started us is gone (a killed bench/run.sh).
    setInterval(() => {
      try {
        process.kill(settings.parentPid, 0);
      } catch {
        stopAll(0);
      }
    }, 1000);
  }
  for (let i = 0; i < settings.workers; i++) cluster.fork();
}

if (cluster.isPrimary) {
  runPrimary();
} else {
  runWorker().catch((err) => {
    process.stderr.write(`peer: ${err.stack || err}\n`);
    process.exit(1);
  });
}
