-- wrk script of `scripts/bench payments`: POST /v1/webhooks/stripe, each delivery once.
--
--   wrk -t2 -c64 -d10s --timeout 10s --latency -s webhooks.lua http://127.0.0.1:PORT -- deliveries=PREFIX
--
-- Thread k (0-based) sends the lines of PREFIX.k in order, each once (gen-webhooks.py writes them:
-- `<Stripe-Signature>` TAB `<body>`). Every delivery is a distinct, correctly signed event, so every
-- answer should be 200 with `"duplicate":false`. When a thread runs out of deliveries it sends
-- GET /healthz instead and counts it as `exhausted` (the run is then invalid: more deliveries are
-- needed, see PAYMENTS_MAX_RATE). Latency and the request count are wrk's own (--latency).
--
-- Prints (from done()): payments_webhooks_per_second=<fresh 2xx/s>, payments_webhooks_p50=... p99=...
-- (wrk's histogram), and payments_webhooks_accepted=<fresh 2xx> duplicates=<2xx with duplicate:true>
-- non_2xx=<n> exhausted=<n> socket_errors=<n> sent=<requests written> requests=<answered> seconds=<s>.

local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local bench = dofile(dir .. "../lib/bench-wrk.lua")

setup = bench.setup

local lines
local headers = { ["Content-Type"] = "application/json" }

function init(args)
    local prefix = bench.options(args, { "deliveries" }).deliveries
    lines = {}
    for line in io.lines(prefix .. "." .. tid) do
        if line ~= "" then lines[#lines + 1] = line end
    end
    -- Globals: done() reads them through thread:get.
    sent, fresh, duplicates, non_2xx, exhausted = 0, 0, 0, 0, 0
end

function request()
    sent = sent + 1
    local line = lines[sent]
    if not line then
        exhausted = exhausted + 1
        return wrk.format("GET", "/healthz")
    end
    lines[sent] = false -- sent once; let the collector have it
    local tab = string.find(line, "\t", 1, true)
    headers["Stripe-Signature"] = string.sub(line, 1, tab - 1)
    return wrk.format("POST", "/v1/webhooks/stripe", headers, string.sub(line, tab + 1))
end

function response(status, _, body)
    if status >= 200 and status < 300 then
        if body and string.find(body, '"duplicate":true', 1, true) then
            duplicates = duplicates + 1
        else
            fresh = fresh + 1
        end
    else
        non_2xx = non_2xx + 1
        if non_2xx <= 3 then
            io.stderr:write("webhook: unexpected status ", status, ": ", string.sub(body or "", 1, 300), "\n")
        end
    end
end

function done(summary, latency, _)
    local seconds = summary.duration / 1e6
    local accepted = bench.total("fresh") - bench.total("exhausted") -- a /healthz answer is a 2xx without "duplicate"
    io.write(string.format("payments_webhooks_per_second=%.0f\n", accepted / seconds))
    io.write(string.format("payments_webhooks_p50=%.3f ms p99=%.3f ms p90=%.3f ms max=%.3f ms (wrk)\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(90) / 1000, latency.max / 1000))
    io.write(string.format(
        "payments_webhooks_accepted=%d duplicates=%d non_2xx=%d exhausted=%d socket_errors=%d sent=%d requests=%d seconds=%.2f\n",
        accepted, bench.total("duplicates"), bench.total("non_2xx"), bench.total("exhausted"),
        bench.socket_errors(summary), bench.total("sent"), summary.requests, seconds))
end
