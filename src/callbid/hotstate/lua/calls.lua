-- Shared by the scripts that keep reservations and calls beyond the reserve (prepended after
-- common.lua to each but reserve.lua, which needs none of it).

local function capped(subject, cap)
  if subject[2] ~= '' then return 'capped:' .. subject[2] .. ':' .. cap end
  return 'capped:' .. cap
end

local function count_live(kind, key, now)
  return redis.call('ZCOUNT', P .. kind .. key, '(' .. fmt(now), '+inf')
end

-- Mirrors domain.reserve.blocking_cap: subject = [key, label, concurrency|null, periods],
-- period = [name, counter, limit].
local function blocking(subject, now)
  local concurrency, periods = subject[3], subject[4]
  if concurrency ~= NULL and count_live('live:', subject[1], now) >= concurrency then
    return capped(subject, 'concurrency')
  end
  if #periods == 0 then return nil end
  local pending = count_live('pending:', subject[1], now)
  for _, cap in ipairs(periods) do
    local counted = tonumber(redis.call('GET', P .. 'cnt:' .. cap[2])) or 0
    if counted + pending >= cap[3] then return capped(subject, cap[1]) end
  end
  return nil
end

local function first_blocking(subjects, now)
  for _, subject in ipairs(subjects) do
    local reason = blocking(subject, now)
    if reason then return reason end
  end
  return nil
end

local function take_slots(rec, now)
  local life = life_of(tonumber(rec.e), now)
  for _, key in ipairs(rec.k) do
    add_slot(P .. 'live:' .. key, rec.u, rec.e, life, now)
    add_slot(P .. 'pending:' .. key, rec.u, rec.e, life, now)
  end
end

local function subject_keys(subjects)
  local keys = {}
  for i, subject in ipairs(subjects) do keys[i] = subject[1] end
  return keys
end

local function save_record(rec, now)
  local raw = cjson.encode(rec)
  set_for(P .. 'r:' .. rec.u, raw, tonumber(rec.e) - now)
  return raw
end

local function drop_if_owned(owned, uuid)
  if redis.call('GET', owned) == uuid then redis.call('DEL', owned) end
end

-- End a stored reservation: the record, its match entry, its shield entry and pool number
-- (when still its own) and its slots. As MemoryHotState._forget.
local function forget_record(rec)
  redis.call('DEL', P .. 'r:' .. rec.u)
  if rec.pn then drop_if_owned(P .. 'pool:' .. rec.pn, rec.u) end
  if rec.c then
    local who, fields = P .. 'who:' .. rec.c, {'m:' .. rec.i .. ':' .. rec.u}
    if rec.sh and redis.call('HGET', who, rec.sh) == rec.u then fields[2] = rec.sh end
    redis.call('HDEL', who, unpack(fields))
  end
  for _, subject in ipairs(rec.k) do
    redis.call('ZREM', P .. 'live:' .. subject, rec.u)
    redis.call('ZREM', P .. 'pending:' .. subject, rec.u)
  end
end

-- A live call's hold (domain.reserve.CallHold): c = call key, t = target, k = subject keys,
-- n = period counters, e = until, d = counted. Slot members are `call:<call key>`.
local function save_call(h, now)
  set_for(P .. 'call:' .. h.c, cjson.encode(h), tonumber(h.e) - now)
end

local function hold_call(h, now)
  local life = life_of(tonumber(h.e), now)
  local member = 'call:' .. h.c
  for _, key in ipairs(h.k) do
    add_slot(P .. 'live:' .. key, member, h.e, life, now)
    if not h.d then add_slot(P .. 'pending:' .. key, member, h.e, life, now) end
  end
  save_call(h, now)
end

local function let_go(h)
  redis.call('DEL', P .. 'call:' .. h.c)
  local member = 'call:' .. h.c
  for _, key in ipairs(h.k) do
    redis.call('ZREM', P .. 'live:' .. key, member)
    redis.call('ZREM', P .. 'pending:' .. key, member)
  end
end

-- Counters of hours, days and months are collected after 40 days; lifetime ones are kept.
local function count_hold(h, now)
  for _, counter in ipairs(h.n) do
    local key = P .. 'cnt:' .. counter
    redis.call('INCR', key)
    if string.sub(counter, -5) ~= ':life' and redis.call('TTL', key) < 0 then
      redis.call('EXPIRE', key, 40 * 86400)
    end
  end
  local member = 'call:' .. h.c
  for _, key in ipairs(h.k) do redis.call('ZREM', P .. 'pending:' .. key, member) end
  h.d = true
  save_call(h, now)
end

local function stored_call(call_key)
  local raw = redis.call('GET', P .. 'call:' .. call_key)
  if not raw then return nil end
  return cjson.decode(raw)
end
