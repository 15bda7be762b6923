-- dial(KEYS[1] = prefix; ARGV = call key, target id, subjects JSON, now, until, counters
-- JSON): as MemoryHotState.dial. Reply: {'held'} | {'capped', reason}.
local call_key, target = ARGV[1], tonumber(ARGV[2])
local now, untl = tonumber(ARGV[4]), tonumber(ARGV[5])
local counters = cjson.decode(ARGV[6])
local held = stored_call(call_key)
if held and tonumber(held.t) == target then
  held.n = counters
  save_call(held, now)
  return {'held'}
end
if held then let_go(held) end
local subjects = cjson.decode(ARGV[3])
local reason = first_blocking(subjects, now)
if reason then return {'capped', reason} end
hold_call({
  c = call_key, t = target, k = subject_keys(subjects), n = counters, e = ARGV[5], d = false,
}, now)
return {'held'}
