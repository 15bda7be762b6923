-- Shared by every hot-state script (prepended to each). KEYS[1] is the namespace prefix
-- `cb:{<ns>}:`: it names the Redis Cluster slot, and every key a script touches starts with it.
-- Times are the caller's epoch seconds (never Redis's clock); Redis key TTLs only collect
-- garbage, a generous GRACE after the caller's `now` says a key is dead.
local P = KEYS[1]
local NULL = cjson.null
local GRACE = 86400

local function fmt(x)
  return string.format('%.17g', x)
end

-- SET `key` to `value`, to be collected GRACE after `seconds` from the caller's now.
local function set_for(key, value, seconds)
  redis.call('SET', key, value, 'EX', math.max(math.ceil(seconds), 0) + GRACE)
end

-- The stored record `uuid` (decoded, raw) when it is live at `now`; nil otherwise.
local function live_record(uuid, now)
  if not uuid then return nil end
  local raw = redis.call('GET', P .. 'r:' .. uuid)
  if not raw then return nil end
  local rec = cjson.decode(raw)
  if tonumber(rec.e) <= now then return nil end
  return rec, raw
end

-- The TTL of a key that must outlive `expires_at` (a number) by GRACE.
local function life_of(expires_at, now)
  return math.max(math.ceil(expires_at - now), 0) + GRACE
end

-- Add `member` at `score` (an expiry, as a string) to the sorted set `key`, which must live
-- `life` seconds more. Entries are pruned an hour late so that a worker whose clock lags still
-- counts them, and only when the key's TTL is topped up: at most once per PRUNE_EVERY seconds
-- (a key the ZADD just made, TTL -1, has nothing to prune).
local PRUNE_EVERY = 300
local function add_slot(key, member, score, life, now)
  redis.call('ZADD', key, score, member)
  local ttl = redis.call('TTL', key)
  if ttl < life then
    if ttl >= 0 then redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - 3600)) end
    redis.call('EXPIRE', key, life + PRUNE_EVERY)
  end
end

-- A caller's hash `who:<caller>` holds, per field: a shield (its key -> the uuid it answers
-- with), a sighting (`seen:<campaign>:<caller>` -> 'at|until') and each reservation made for
-- the caller on a number (`m:<number>:<uuid>` -> its expiry), which is how a call is matched.
-- Every field says when it is dead, so the hash only needs to outlive the longest: after an
-- HSET it must live `life` seconds more; when its TTL is topped up (at most once per
-- PRUNE_EVERY), the match fields dead for an hour are dropped (as add_slot prunes). A hash
-- the HSET just made (no TTL yet, nothing to prune) gets its TTL in one command.
local function keep_who(key, life, now)
  if redis.call('EXPIRE', key, life + PRUNE_EVERY, 'NX') == 1 then return end
  local ttl = redis.call('TTL', key)
  if ttl >= life then return end
  if ttl >= 0 then
    local fields, dead, cutoff = redis.call('HGETALL', key), {}, now - 3600
    for f = 1, #fields, 2 do
      if string.sub(fields[f], 1, 2) == 'm:' and tonumber(fields[f + 1]) < cutoff then
        dead[#dead + 1] = fields[f]
      end
    end
    if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  end
  redis.call('EXPIRE', key, life + PRUNE_EVERY)
end
