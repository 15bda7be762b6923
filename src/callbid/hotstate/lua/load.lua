-- load(KEYS[1] = prefix; ARGV[1] = records JSON array, ARGV[2] = now): put back live
-- reservations read from the database after Redis lost its data, as reserve.lua stores them.
-- A record Redis still has is left alone. Reply: how many were put back.
local records, now = cjson.decode(ARGV[1]), tonumber(ARGV[2])
local loaded = 0
for _, rec in ipairs(records) do
  local expires_at = tonumber(rec.e)
  if expires_at > now and redis.call('EXISTS', P .. 'r:' .. rec.u) == 0 then
    save_record(rec, now)
    if rec.pn then set_for(P .. 'pool:' .. rec.pn, rec.u, expires_at - now) end
    if rec.c then
      local who = P .. 'who:' .. rec.c
      redis.call('HSET', who, 'm:' .. rec.i .. ':' .. rec.u, rec.e)
      if rec.sh then redis.call('HSET', who, rec.sh, rec.u) end
      keep_who(who, life_of(expires_at, now), now)
    end
    if rec.h then take_slots(rec, now) end
    loaded = loaded + 1
  end
end
return loaded
