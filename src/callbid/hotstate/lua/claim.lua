-- claim(KEYS[1] = prefix; ARGV = call key, dialled, caller ('' when none), now, until): as
-- MemoryHotState.claim. Reply: the claimed record JSON, or nil when nothing live matches.
local call_key, dialled, caller = ARGV[1], ARGV[2], ARGV[3]
local now, untl = tonumber(ARGV[4]), tonumber(ARGV[5])
local prior = redis.call('GET', P .. 'claimed:' .. call_key)
if prior then return prior end
-- The latest live reservation of this caller on this number, else the pool number's.
local rec, raw
if caller ~= '' then
  -- The caller's match fields on this number, `m:<dialled>:<uuid>` -> expiry: the latest
  -- still live (ties to the greater uuid, as a sorted set orders them).
  local fields = redis.call('HGETALL', P .. 'who:' .. caller)
  local head = 'm:' .. dialled .. ':'
  local best_at, best = now, nil
  for f = 1, #fields, 2 do
    local name = fields[f]
    if string.sub(name, 1, #head) == head then
      local at, uuid = tonumber(fields[f + 1]), string.sub(name, #head + 1)
      if at > best_at or (at == best_at and best and uuid > best) then best_at, best = at, uuid end
    end
  end
  if best then rec, raw = live_record(best, now) end
end
if not rec then rec, raw = live_record(redis.call('GET', P .. 'pool:' .. dialled), now) end
if not rec or rec.i ~= dialled then return false end
forget_record(rec)
set_for(P .. 'claimed:' .. call_key, raw, untl - now)
if rec.h then
  hold_call({c = call_key, t = rec.t, k = rec.k, n = {}, e = ARGV[5], d = false}, now)
end
return raw
