-- wrk script: POST /v1/holds with 1-4 random seats of random events (see common.lua for the seat
-- walk and the script arguments). Counts 201 (held), 409 (seats taken: counted, not an error) and
-- anything else; latency and throughput are wrk's own (every request is a hold).
--
--   wrk -t2 -c64 -d10s --timeout 10s -s holds.lua http://127.0.0.1:PORT -- events=FILE first=1 ...
--
-- Prints (from done()): booking_holds_per_second=<requests/s>, booking_holds_p50=... p99=...,
-- and booking_holds_created=<201s> conflicts=<409s> other=<other statuses> socket_errors=<n>.

local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
local bench = dofile(dir .. "../lib/bench-wrk.lua")

setup = bench.setup

local created, conflicts, other = 0, 0, 0
local customer_prefix
local sequence = 0
local headers

function init(args)
    common.configure(args, tid)
    customer_prefix = "bench-" .. common.tag .. "-" .. tid .. "-"
    headers = { ["Authorization"] = common.auth, ["Content-Type"] = "application/json" }
end

-- Every hold is a customer of its own: the per-customer limits (MAX_HELD_SEATS_PER_CUSTOMER,
-- HOLD_ATTEMPTS_PER_CUSTOMER_PER_MINUTE) stay at their defaults and never refuse a bench hold.
function request()
    sequence = sequence + 1
    return wrk.format("POST", "/v1/holds", headers, common.next_hold_body(customer_prefix .. sequence))
end

function response(status, _, body)
    if status == 201 then
        created = created + 1
    elseif status == 409 then
        conflicts = conflicts + 1
    else
        other = other + 1
        if other <= 3 then io.stderr:write("hold: unexpected status ", status, ": ", string.sub(body or "", 1, 300), "\n") end
    end
    -- Publish the counters where done() can read them (thread:get copies globals).
    held, taken, failed = created, conflicts, other
end

function done(summary, latency, _)
    local c, t, o = bench.total("held"), bench.total("taken"), bench.total("failed")
    local seconds = summary.duration / 1e6
    io.write(string.format("booking_holds_per_second=%.0f\n", summary.requests / seconds))
    io.write(string.format("booking_holds_p50=%s p99=%s max=%s (wrk, per request)\n",
        common.ms(latency:percentile(50)), common.ms(latency:percentile(99)), common.ms(latency.max)))
    io.write(string.format("booking_holds_created=%d conflicts=%d other=%d socket_errors=%d requests=%d seconds=%.2f held_per_second=%.0f\n",
        c, t, o, bench.socket_errors(summary), summary.requests, seconds, c / seconds))
end
