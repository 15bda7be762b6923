-- end(KEYS[1] = prefix; ARGV = call key, count ('1' or '0'), now): free a call's slots,
-- counting it first when asked and not yet counted. Reply: its hold JSON, or nil.
local held = stored_call(ARGV[1])
if not held then return false end
if ARGV[2] == '1' and not held.d then count_hold(held, tonumber(ARGV[3])) end
let_go(held)
return cjson.encode(held)
