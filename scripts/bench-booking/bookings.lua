-- wrk script: bookings, each a hold (POST /v1/holds, 1-4 random seats as in holds.lua) followed on
-- the same connection by its conversion (POST /v1/bookings with the returned hold_id and a fresh
-- Idempotency-Key). Run it with exactly one connection per thread (-t N -c N): wrk's Lua state is
-- per thread, so one connection per thread is what lets response() know which request it answers
-- and chain the conversion to its hold.
--
--   wrk -t64 -c64 -d10s --timeout 10s -s bookings.lua http://127.0.0.1:PORT -- events=FILE first=... threads=64 ...
--
-- Latencies are measured here (CLOCK_MONOTONIC through LuaJIT's ffi), not by wrk, whose histogram
-- would mix holds and conversions: each step on its own, and the pair (hold sent -> booking
-- answered). A pair counts when both steps answered 201; a hold answered 409 is counted and the
-- next hold is tried; a conversion answered anything but 201 is counted as failed.
--
-- Prints (from done()): booking_bookings_per_second=<pairs/s>, booking_bookings_p50=... p99=...
-- (the pair), the steps' percentiles, and booking_bookings_created=<201s of /v1/bookings> with
-- the other outcomes.

local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")
local bench = dofile(dir .. "../lib/bench-wrk.lua")

setup = bench.setup

local customer              -- the customer of the hold in flight or pending: one per hold (see holds.lua)
local customer_prefix
local hold_headers, booking_headers
local pending_hold          -- hold_id to convert next, nil when the next request is a hold
local sent_kind             -- "hold" or "booking": what the connection's request in flight is
local hold_sent, booking_sent = 0, 0
local sequence = 0

function init(args)
    common.configure(args, tid)
    customer_prefix = "bench-" .. common.tag .. "-" .. tid .. "-"
    hold_headers = { ["Authorization"] = common.auth, ["Content-Type"] = "application/json" }
    booking_headers = { ["Authorization"] = common.auth, ["Content-Type"] = "application/json" }
    -- Published to done() through thread:get (globals of this thread's Lua state).
    hold_latencies, booking_latencies, pair_latencies = {}, {}, {}
    holds_created, holds_conflicted, holds_failed = 0, 0, 0
    bookings_created, bookings_failed = 0, 0
end

function request()
    local now = common.now_us()
    if pending_hold then
        sent_kind = "booking"
        booking_sent = now
        sequence = sequence + 1
        booking_headers["Idempotency-Key"] = "bench-" .. common.tag .. "-" .. tid .. "-" .. sequence
        return wrk.format("POST", "/v1/bookings", booking_headers,
            '{"hold_id":"' .. pending_hold .. '","customer_id":"' .. customer .. '"}')
    end
    sent_kind = "hold"
    hold_sent = now
    sequence = sequence + 1
    customer = customer_prefix .. sequence
    return wrk.format("POST", "/v1/holds", hold_headers, common.next_hold_body(customer))
end

local function report(what, status, body)
    io.stderr:write(what, ": unexpected status ", status, ": ", string.sub(body or "", 1, 300), "\n")
end

function response(status, _, body)
    local now = common.now_us()
    if sent_kind == "hold" then
        hold_latencies[#hold_latencies + 1] = now - hold_sent
        if status == 201 then
            holds_created = holds_created + 1
            pending_hold = string.match(body, '"hold_id"%s*:%s*"([^"]+)"')
            if not pending_hold then
                holds_failed = holds_failed + 1
                report("hold without hold_id", status, body)
            end
        elseif status == 409 then
            holds_conflicted = holds_conflicted + 1
        else
            holds_failed = holds_failed + 1
            if holds_failed <= 3 then report("hold", status, body) end
        end
    else
        booking_latencies[#booking_latencies + 1] = now - booking_sent
        if status == 201 then
            bookings_created = bookings_created + 1
            pair_latencies[#pair_latencies + 1] = now - hold_sent
        else
            bookings_failed = bookings_failed + 1
            if bookings_failed <= 3 then report("booking", status, body) end
        end
        pending_hold = nil
    end
end

function done(summary, _, _)
    local seconds = summary.duration / 1e6
    local pairs_ = bench.gather("pair_latencies")
    local holds = bench.gather("hold_latencies")
    local bookings = bench.gather("booking_latencies")
    io.write(string.format("booking_bookings_per_second=%.0f\n", #pairs_ / seconds))
    io.write(string.format("booking_bookings_p50=%s p99=%s max=%s (hold sent -> booking answered 201)\n",
        common.ms(common.percentile(pairs_, 50)), common.ms(common.percentile(pairs_, 99)), common.ms(pairs_[#pairs_])))
    io.write(string.format("booking_bookings_hold_step_p50=%s p99=%s\n",
        common.ms(common.percentile(holds, 50)), common.ms(common.percentile(holds, 99))))
    io.write(string.format("booking_bookings_convert_step_p50=%s p99=%s\n",
        common.ms(common.percentile(bookings, 50)), common.ms(common.percentile(bookings, 99))))
    io.write(string.format(
        "booking_bookings_created=%d convert_failed=%d holds_created=%d holds_conflicted=%d holds_failed=%d socket_errors=%d requests=%d seconds=%.2f\n",
        bench.total("bookings_created"), bench.total("bookings_failed"), bench.total("holds_created"),
        bench.total("holds_conflicted"), bench.total("holds_failed"), bench.socket_errors(summary), summary.requests, seconds))
end
