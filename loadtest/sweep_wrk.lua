-- wrk script of loadtest/sweep: the closed-loop peak of a scenario.
--
-- Replays the requests `recd-load --dump FILE` wrote (one per line:
-- METHOD<TAB>PATH<TAB>BODY, BODY compact JSON or empty), cycling through
-- them. Every wrk thread has its own Lua state and starts at its own offset
-- (thread n of T at n * lines / T), so the threads do not send the same
-- request at the same moment.
--
-- The file comes from $SWEEP_REQUESTS, else from the first argument after
-- `--` on wrk's command line:
--   SWEEP_REQUESTS=/tmp/req.tsv wrk -t2 -c16 -d15s -s loadtest/sweep_wrk.lua http://127.0.0.1:8080
--
-- Each thread counts its responses by status; at the end done() prints one
-- line to stdout, "SWEEP_WRK_JSON {...}", with wrk's totals, its latency
-- percentiles (microseconds) and the count of non-2xx responses (wrk itself
-- only counts statuses >= 400 as errors).

local threads = {}
local next_id = 0

-- main state: number the threads as wrk creates them
function setup(thread)
    thread:set("thread_id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

-- per-thread state
local reqs = {}
local pos = 1
status_counts = {}
non2xx = 0
responses = 0
load_error = nil

local function requests_path(args)
    local p = os.getenv("SWEEP_REQUESTS")
    if p and p ~= "" then
        return p
    end
    -- wrk passes the URL as args[0] and the words after "--" from args[1]
    for i = 1, #args do
        if not string.find(args[i], "^https?://") then
            return args[i]
        end
    end
    return nil
end

function init(args)
    local path = requests_path(args or {})
    if not path then
        load_error = "no request file: set SWEEP_REQUESTS or pass it after --"
        return
    end
    local f, err = io.open(path, "r")
    if not f then
        load_error = "cannot open " .. path .. ": " .. tostring(err)
        return
    end
    local json_headers = { ["Content-Type"] = "application/json" }
    local n = 0
    for line in f:lines() do
        local method, rpath, body = string.match(line, "^([^\t]+)\t([^\t]+)\t?(.*)$")
        if method then
            n = n + 1
            if body ~= nil and body ~= "" then
                reqs[n] = wrk.format(method, rpath, json_headers, body)
            else
                reqs[n] = wrk.format(method, rpath, nil, nil)
            end
        end
    end
    f:close()
    if n == 0 then
        load_error = path .. ": no METHOD<TAB>PATH<TAB>BODY lines"
        return
    end
    local tid = thread_id or 0
    local nthreads = tonumber(os.getenv("SWEEP_WRK_THREADS") or "1") or 1
    if nthreads < 1 then
        nthreads = 1
    end
    pos = (tid * math.floor(n / nthreads)) % n + 1
end

function request()
    if load_error then
        -- nothing to send: stop this thread; done() reports the reason
        wrk.thread:stop()
        return wrk.format("GET", "/healthz")
    end
    local r = reqs[pos]
    pos = pos + 1
    if pos > #reqs then
        pos = 1
    end
    return r
end

function response(status, headers, body)
    responses = responses + 1
    local key = tostring(status)
    status_counts[key] = (status_counts[key] or 0) + 1
    if status < 200 or status > 299 then
        non2xx = non2xx + 1
    end
end

local function json_string(s)
    s = string.gsub(tostring(s), '[%c"\\]', function(c)
        return string.format("\\u%04x", string.byte(c))
    end)
    return '"' .. s .. '"'
end

function done(summary, latency, requests)
    local bad = 0
    local seen = 0
    local statuses = {}
    local errors = {}
    for _, t in ipairs(threads) do
        bad = bad + (t:get("non2xx") or 0)
        seen = seen + (t:get("responses") or 0)
        local sc = t:get("status_counts") or {}
        for k, v in pairs(sc) do
            statuses[k] = (statuses[k] or 0) + v
        end
        local e = t:get("load_error")
        if e then
            table.insert(errors, json_string(e))
        end
    end
    local st = {}
    for k, v in pairs(statuses) do
        table.insert(st, string.format('"%s": %d', k, v))
    end
    local secs = summary.duration / 1e6
    -- wrk's histogram reports a huge minimum when it holds no sample
    local lmin = summary.requests > 0 and latency.min or 0
    local e = summary.errors
    local out = string.format(
        '{"duration_s": %.6f, "requests": %d, "bytes": %d, "requests_per_s": %.3f, ' ..
        '"responses_counted": %d, "non2xx": %d, "status": {%s}, ' ..
        '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
        '"wrk_status_errors": %d, ' ..
        '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "p999": %d, "min": %d, "max": %d, ' ..
        '"mean": %.1f, "stdev": %.1f}, "threads": %d, "script_errors": [%s]}',
        secs, summary.requests, summary.bytes, secs > 0 and summary.requests / secs or 0,
        seen, bad, table.concat(st, ", "),
        e.connect, e.read, e.write, e.timeout, e.status,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), lmin, latency.max, latency.mean, latency.stdev,
        #threads, table.concat(errors, ", "))
    io.write("SWEEP_WRK_JSON " .. out .. "\n")
end
