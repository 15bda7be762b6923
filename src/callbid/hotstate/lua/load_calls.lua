-- load_calls(KEYS[1] = prefix; ARGV = holds JSON, counts JSON, now): put back live calls'
-- holds and period counts read from the database; a hold Redis still has is left alone, a
-- counter keeps the larger value. Reply: how many holds were put back.
local holds, counts, now = cjson.decode(ARGV[1]), cjson.decode(ARGV[2]), tonumber(ARGV[3])
for counter, count in pairs(counts) do
  local key = P .. 'cnt:' .. counter
  if (tonumber(redis.call('GET', key)) or 0) < count then redis.call('SET', key, count) end
end
local loaded = 0
for _, h in ipairs(holds) do
  if tonumber(h.e) > now and redis.call('EXISTS', P .. 'call:' .. h.c) == 0 then
    hold_call(h, now)
    loaded = loaded + 1
  end
end
return loaded
