-- wrk script of `scripts/bench notification` (the reference): POST /wrk/<n> to the bench's receiver
-- (`platform-bench receiver`), each request shaped like one of the service's deliveries.
--
--   wrk -t2 -c40 -d10s --timeout 10s --latency -s deliveries.lua http://127.0.0.1:PORT -- body=FILE
--
-- FILE is a delivery body the service sent (a ~600-byte booking.confirmed envelope). Every request
-- carries the headers a delivery carries (Content-Type, User-Agent, webhook-id, webhook-timestamp,
-- webhook-signature of the same lengths), so the receiver does the same work per request: it reads
-- the body, finds occurred_at and counts it (path group `other`, not recorded), and answers 204.
--
-- Prints (from done()): notification_wrk_per_second=<2xx/s>, notification_wrk_p50=... p99=... (wrk's
-- histogram) and notification_wrk_counts non_2xx=<n> socket_errors=<n> requests=<n> seconds=<s>.

local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local bench = dofile(dir .. "../lib/bench-wrk.lua")

setup = bench.setup

local body
local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "booking-platform-notification/1",
    ["webhook-signature"] = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
}

function init(args)
    local file = assert(io.open(bench.options(args, { "body" }).body, "rb"))
    body = file:read("*a")
    file:close()
    sent, non_2xx = 0, 0
end

function request()
    sent = sent + 1
    headers["webhook-id"] = string.format("00000000-0000-4000-8000-%012d", tid * 100000000 + sent)
    headers["webhook-timestamp"] = tostring(os.time())
    return wrk.format("POST", "/wrk/" .. tid, headers, body)
end

function response(status, _, _)
    if status < 200 or status >= 300 then
        non_2xx = non_2xx + 1
    end
end

function done(summary, latency, _)
    local seconds = summary.duration / 1e6
    local non_2xx_total = bench.total("non_2xx")
    io.write(string.format("notification_wrk_per_second=%.0f\n", (summary.requests - non_2xx_total) / seconds))
    io.write(string.format("notification_wrk_p50=%.3f ms p99=%.3f ms p90=%.3f ms max=%.3f ms (wrk)\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(90) / 1000, latency.max / 1000))
    io.write(string.format("notification_wrk_counts non_2xx=%d socket_errors=%d requests=%d seconds=%.2f\n",
        non_2xx_total, bench.socket_errors(summary), summary.requests, seconds))
end
