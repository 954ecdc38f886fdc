-- Shared by holds.lua and bookings.lua (wrk scripts of `scripts/bench booking`; each loads this file
-- with dofile from its own folder). What all the bench's wrk scripts share (threads, counters,
-- script arguments) is in scripts/lib/bench-wrk.lua.
--
-- Script arguments (after `--` on wrk's command line), key=value:
--   events=FILE   event ids, one a line (the events the bench created, each with `seats` seats
--                 named s00001, s00002, ...)
--   first=N       first line of FILE this run uses (1-based); count=N: how many events
--   seats=N       seats per event; threads=N: wrk's -t (the walk below splits the blocks by thread)
--   key=KEY       client API key; tag=TEXT: makes customer ids and idempotency keys unique per run
--   seed=N        random seed (the seat walk is deterministic for a given seed)
--
-- Seat choice: an event's seats are cut into blocks of 4; a request takes the first 1-4 (uniformly
-- random) seats of one block. Each wrk thread owns the blocks whose number is its thread index
-- modulo `threads`, and walks them in a pseudo-random order (an affine permutation), so requests
-- land on random seats of random events and two requests never ask for the same seat: contention
-- is low by construction. A walk that runs out of blocks starts over (those requests get 409,
-- which are counted, not errors).

local common = {}

local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local bench = dofile(dir .. "../lib/bench-wrk.lua")

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")

-- Monotonic time in microseconds (CLOCK_MONOTONIC).
function common.now_us()
    ffi.C.clock_gettime(1, timespec)
    return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

function common.parse(args)
    return bench.options(args, { "events", "first", "count", "seats", "threads", "key", "tag" })
end

-- Sets up this thread's walk. `tid` is the thread index set by setup() (0-based).
function common.configure(args, tid)
    local o = common.parse(args)
    local all = {}
    for line in io.lines(o.events) do
        if line ~= "" then all[#all + 1] = line end
    end
    local first, count = tonumber(o.first), tonumber(o.count)
    if first < 1 or first + count - 1 > #all then
        error(string.format("events %d..%d asked for, but %s lists %d", first, first + count - 1, o.events, #all))
    end
    common.events = {}
    for i = first, first + count - 1 do common.events[#common.events + 1] = all[i] end
    common.threads = tonumber(o.threads)
    common.tid = tid
    common.blocks_per_event = math.floor(tonumber(o.seats) / 4)
    common.blocks = math.floor(count * common.blocks_per_event / common.threads) -- blocks of this thread
    if common.blocks < 1 then error("not enough seats for " .. common.threads .. " threads") end
    common.key = o.key
    common.tag = o.tag
    math.randomseed(tonumber(o.seed or "1") * 1000 + tid)
    -- p(c) = (a * c + b) mod blocks is a permutation when a and blocks are coprime; 1000003 is prime
    -- and larger than any block count used here.
    common.a = 1000003
    common.b = math.random(0, common.blocks - 1)
    common.step = 0
    common.auth = "Bearer " .. o.key
end

-- The next hold request body: 1-4 seats of one block, and the customer id used.
function common.next_hold_body(customer)
    local p = (common.a * (common.step % common.blocks) + common.b) % common.blocks
    common.step = common.step + 1
    local block = p * common.threads + common.tid
    local event = common.events[math.floor(block / common.blocks_per_event) + 1]
    local base = (block % common.blocks_per_event) * 4
    local k = math.random(1, 4)
    local seats = {}
    for i = 1, k do seats[i] = string.format('"s%05d"', base + i) end
    return '{"event_id":"' .. event .. '","seat_ids":[' .. table.concat(seats, ",") .. '],"customer_id":"' .. customer .. '"}'
end

-- Percentile `p` (0-100) of a sorted array, nil when empty.
function common.percentile(sorted, p)
    if #sorted == 0 then return nil end
    local index = math.floor(#sorted * p / 100) + 1
    if index > #sorted then index = #sorted end
    return sorted[index]
end

function common.ms(us)
    if us == nil then return "n/a" end
    return string.format("%.3f ms", us / 1000)
end

return common
