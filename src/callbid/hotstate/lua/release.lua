-- release(KEYS[1] = prefix; ARGV[1] = uuid): end a reservation, free its slots, shield entry
-- and pool number (when still its own). Reply: the record JSON as it was, or nil.
local uuid = ARGV[1]
local key = P .. 'r:' .. uuid
local raw = redis.call('GET', key)
if not raw then return false end
redis.call('DEL', key)
local rec = cjson.decode(raw)

local function drop_if_owned(owned)
  if redis.call('GET', owned) == uuid then redis.call('DEL', owned) end
end

if rec.sh then drop_if_owned(P .. 'shield:' .. rec.sh) end
if rec.pn then drop_if_owned(P .. 'pool:' .. rec.pn) end
for _, subject in ipairs(rec.k) do
  redis.call('ZREM', P .. 'live:' .. subject, uuid)
  redis.call('ZREM', P .. 'pending:' .. subject, uuid)
end
return raw
