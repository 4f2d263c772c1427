-- charges.lua - wrk script: POST /v1/charges as new charges or as replays of stored keys.
--
--   wrk ... -s bench/charges.lua URL -- API_KEY KEY_PREFIX [REPLAY_KEYS]
--
-- Without REPLAY_KEYS every request carries a new Idempotency-Key:
-- KEY_PREFIX<thread>-<n>. With REPLAY_KEYS = N, requests cycle through the
-- keys KEY_PREFIX0 .. KEY_PREFIX<N-1>, which bench/run.sh stored beforehand
-- with the same body, so each one is a retry answered from the stored row.
-- done() prints one "BENCH key=value ..." line for bench/run.sh to read.

local body = '{"amount":2000,"currency":"usd","source":"tok_visa","description":"bench"}'
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  prefix = args[2]
  replay_keys = tonumber(args[3] or "0")
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  n = 0
  if replay_keys > 0 then
    -- Threads start at different keys so that they do not retry the same one at once.
    n = math.floor(tid * replay_keys / 8)
  end
end

function request()
  local key
  if replay_keys > 0 then
    key = prefix .. (n % replay_keys)
  else
    key = prefix .. tid .. "-" .. n
  end
  n = n + 1
  wrk.headers["Idempotency-Key"] = key
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d status_errors=%d connect_errors=%d read_errors=%d " ..
    "write_errors=%d timeouts=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
