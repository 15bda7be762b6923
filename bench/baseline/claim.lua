-- claim(KEYS[1] = prefix; ARGV = call key, dialled, caller ('' when none), now, until): as
-- MemoryHotState.claim. Reply: the claimed record JSON, or nil when nothing live matches.
local call_key, dialled, caller = ARGV[1], ARGV[2], ARGV[3]
local now, untl = tonumber(ARGV[4]), tonumber(ARGV[5])
local prior = redis.call('GET', P .. 'claimed:' .. call_key)
if prior then return prior end
-- The latest live reservation of this caller on this number, else the pool number's.
local rec, raw
if caller ~= '' then
  local latest = redis.call(
    'ZREVRANGEBYSCORE', P .. 'm:' .. dialled .. '|' .. caller, '+inf', '(' .. fmt(now),
    'LIMIT', 0, 1)
  if latest[1] then rec, raw = live_record(latest[1], now) end
end
if not rec then rec, raw = live_record(redis.call('GET', P .. 'pool:' .. dialled), now) end
if not rec or rec.i ~= dialled then return false end
forget_record(rec)
set_for(P .. 'claimed:' .. call_key, raw, untl - now)
if rec.h then
  hold_call({c = call_key, t = rec.t, k = rec.k, n = {}, e = fmt(untl), d = false}, now)
end
return raw
