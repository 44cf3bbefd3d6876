-- wrk script: POST /v1/recommend with a random user, a random history of
-- 5-20 known items and the default 300 candidates.
-- Environment: BENCH_ITEMS (catalog size, ids i0..iN-1), BENCH_K (default 10).
local n_items = tonumber(os.getenv("BENCH_ITEMS") or "100000")
local k = tonumber(os.getenv("BENCH_K") or "10")
local counter = 0

function init(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8), 16) or 0))
end

function request()
  counter = counter + 1
  local h = {}
  for i = 1, math.random(5, 20) do
    h[i] = string.format('"i%d"', math.random(0, n_items - 1))
  end
  local body = string.format(
    '{"user_id":"u%d","k":%d,"history":[%s],"features":{"age":%d,"gender":"%s"},' ..
    '"context":{"device":"mobile","hour":%d}}',
    math.random(1, 1000000), k, table.concat(h, ","), math.random(16, 70),
    (math.random(2) == 1) and "F" or "M", math.random(0, 23))
  return wrk.format("POST", "/v1/recommend", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
