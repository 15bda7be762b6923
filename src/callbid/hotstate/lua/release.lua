-- release(KEYS[1] = prefix; ARGV[1] = uuid): end a reservation, free its slots, shield entry,
-- pool number and match entry (when still its own). Reply: the record JSON as it was, or nil.
local raw = redis.call('GET', P .. 'r:' .. ARGV[1])
if not raw then return false end
forget_record(cjson.decode(raw))
return raw
