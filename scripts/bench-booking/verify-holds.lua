-- Redis script (redis-cli --eval): checks every live hold record of the booking service against
-- the seat keys, after `scripts/bench booking`. No arguments; read-only.
--
-- For each `booking:{event:E}:hold:H` hash: each seat of its `seats` JSON must have its seat key
-- `booking:{event:E}:seat:S` holding exactly H (the hold's fencing token), and no seat may appear in
-- two hold records. Returns, in order:
--   hold records, seats listed by them, seat keys not pointing back at their hold record,
--   seats listed by two or more hold records, seat keys in the database, hold records converted to
--   a booking (with a `booking` field), seat keys whose holding hold has no record (orphans).

local holds, listed, mismatched, shared, seat_keys, converted, orphans = 0, 0, 0, 0, 0, 0, 0
local owner = {}
local cursor = "0"
repeat
    local page = redis.call("SCAN", cursor, "MATCH", "booking:{event:*}:hold:*", "COUNT", 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do
        local prefix, id = string.match(key, "^(.*):hold:([^:]+)$")
        local fields = redis.call("HMGET", key, "seats", "booking")
        if fields[1] then
            holds = holds + 1
            if fields[2] then converted = converted + 1 end
            for _, seat in ipairs(cjson.decode(fields[1])) do
                listed = listed + 1
                local seat_key = prefix .. ":seat:" .. seat
                if owner[seat_key] then
                    shared = shared + 1
                else
                    owner[seat_key] = id
                end
                if redis.call("GET", seat_key) ~= id then mismatched = mismatched + 1 end
            end
        end
    end
until cursor == "0"

cursor = "0"
repeat
    local page = redis.call("SCAN", cursor, "MATCH", "booking:{event:*}:seat:*", "COUNT", 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do
        seat_keys = seat_keys + 1
        if not owner[key] then orphans = orphans + 1 end
    end
until cursor == "0"

return { holds, listed, mismatched, shared, seat_keys, converted, orphans }
