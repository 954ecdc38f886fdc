-- Shared by the wrk scripts of `scripts/bench` (scripts/bench-booking/*.lua,
-- scripts/bench-payments/webhooks.lua): wrk's thread bookkeeping, the counters done() sums over the
-- threads, and the key=value script arguments. A script loads it with dofile, relative to its own
-- folder, and hands wrk the setup:
--
--   local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
--   local bench = dofile(dir .. "../lib/bench-wrk.lua")
--   setup = bench.setup
--
-- wrk runs setup() and done() in one Lua state and each thread's init/request/response in a state of
-- its own (each loads the script, and so this file, anew). setup() gives every thread its index, the
-- global `tid` (0-based) of the thread's state, and keeps the threads, so that done() can read the
-- globals each thread published (thread:get copies them).

local bench = { threads = {} }

function bench.setup(thread)
    thread:set("tid", #bench.threads)
    bench.threads[#bench.threads + 1] = thread
end

-- The sum over the threads of the number global NAME (0 for a thread without it).
function bench.total(name)
    local sum = 0
    for _, thread in ipairs(bench.threads) do sum = sum + (thread:get(name) or 0) end
    return sum
end

-- All the values of the table global NAME over the threads, sorted.
function bench.gather(name)
    local all = {}
    for _, thread in ipairs(bench.threads) do
        local values = thread:get(name)
        if type(values) == "table" then
            for _, v in pairs(values) do all[#all + 1] = v end
        end
    end
    table.sort(all)
    return all
end

-- The run's socket errors (done()'s summary): connect, read, write and timeout.
function bench.socket_errors(summary)
    local e = summary.errors
    return e.connect + e.read + e.write + e.timeout
end

-- The script arguments (after `--` on wrk's command line), key=value, as a table; an error for an
-- argument of another form, or when one of the names in `required` is missing.
function bench.options(args, required)
    local options = {}
    for i = 1, #args do
        local name, value = string.match(args[i], "^([%w_]+)=(.*)$")
        if not name then error("script argument is not key=value: " .. args[i]) end
        options[name] = value
    end
    for _, name in ipairs(required or {}) do
        if not options[name] then error("missing script argument " .. name .. "=...") end
    end
    return options
end

return bench
