-- wrk script: POST /v1/events with one fixed body per wrk thread.
-- Environment:
--   BENCH_BATCH     events per request (default 1)
--   BENCH_USERS     distinct user ids the events spread over (default 100000)
--   BENCH_ITEMS     item ids i0..iN-1 (default 20000)
--   BENCH_DELAY_MS  pause before each request on a connection, ms (default 0:
--                   as fast as the server answers; > 0 throttles the load)
-- The body is built once per thread (wrk loads the script once per thread),
-- so the request is pre-formatted and costs wrk nothing per call.
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")
local n_users = tonumber(os.getenv("BENCH_USERS") or "100000")
local n_items = tonumber(os.getenv("BENCH_ITEMS") or "20000")
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")

math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))

local types = {"impression", "impression", "impression", "click", "watch"}
local evs = {}
for i = 1, batch do
  local t = types[math.random(#types)]
  local value = ""
  if t == "watch" then
    value = string.format(',"value":%d', math.random(1, 600))
  end
  evs[i] = string.format('{"user_id":"u%d","item_id":"i%d","type":"%s"%s}',
                         math.random(1, n_users), math.random(0, n_items - 1), t, value)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"events":[' .. table.concat(evs, ",") .. ']}'

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end
