-- count(KEYS[1] = prefix; ARGV = call key, now): count a live call in its period counters,
-- once. Reply: 1 when it counted now, 0 otherwise.
local held = stored_call(ARGV[1])
if not held or held.d then return 0 end
count_hold(held, tonumber(ARGV[2]))
return 1
