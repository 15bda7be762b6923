-- hold(KEYS[1] = prefix; ARGV = uuid, now, subjects JSON): make a live reservation count
-- against the subjects given. Reply: {'held'} | {'capped', reason} | {'unknown'}.
local uuid, now = ARGV[1], tonumber(ARGV[2])
local rec = live_record(uuid, now)
if not rec then return {'unknown'} end
if rec.h then return {'held'} end
local subjects = cjson.decode(ARGV[3])
local reason = first_blocking(subjects, now)
if reason then return {'capped', reason} end
rec.h = true
rec.k = subject_keys(subjects)
save_record(rec, now)
take_slots(rec, now)
return {'held'}
