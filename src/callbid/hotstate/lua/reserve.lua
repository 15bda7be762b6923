-- reserve(KEYS[1] = prefix; ARGV = the order in flat strings, as redis_wire.reserve_args lays
-- it out): one ping's order, rule for rule as MemoryHotState.reserve_now (a probe stores
-- nothing but the rate; a dry run stores nothing at all and answers what would be stored).
-- Reply: {status, record JSON, blocked JSON, last_seen, retry_after}, absent parts as false.
--
-- Python sends every key in full, every time as the string Redis wants and every record
-- already encoded (one per candidate and payout option), so the script decodes no JSON,
-- formats no float and builds few strings: what it costs Redis is its commands.
local A = ARGV
local uuid, now = A[1], tonumber(A[2])
local hold, probe, dry = A[3] == '1', A[4] == '1', A[5] == '1'
local record_key, who_key, shield_field, seen_field = A[6], A[7], A[8], A[9]
local seen_value, who_life, life_text, expires, since = A[10], tonumber(A[11]), A[12], A[13], A[14]
local life = tonumber(life_text)
local inbound, inbound_json = A[15], A[16]
local epsilon = tonumber(A[17])

local function answer(status, raw, blocked, seen, wait)
  local skipped = false
  if blocked and #blocked > 0 then skipped = cjson.encode(blocked) end
  return {status, raw or false, skipped, seen or false, wait and fmt(wait) or false}
end

-- Reads ARGV from `i` on: each call returns the next token.
local i = 18
local function take()
  local token = A[i]
  i = i + 1
  return token
end

-- A cap subject: {live key, pending key, concurrency, its reason, {{counter key, limit,
-- reason}...}}; concurrency is nil when uncapped.
local function take_subject()
  local live, pending, concurrency, reason = take(), take(), take(), take()
  local periods = {}
  for p = 1, tonumber(take()) do periods[p] = {take(), tonumber(take()), take()} end
  return {live, pending, tonumber(concurrency), reason, periods}
end

-- Mirrors domain.reserve.blocking_cap.
local function blocking(subject)
  local concurrency, periods = subject[3], subject[5]
  if concurrency and redis.call('ZCOUNT', subject[1], since, '+inf') >= concurrency then
    return subject[4]
  end
  if #periods == 0 then return nil end
  local pending = redis.call('ZCOUNT', subject[2], since, '+inf')
  for _, cap in ipairs(periods) do
    local counted = tonumber(redis.call('GET', cap[1])) or 0
    if counted + pending >= cap[2] then return cap[3] end
  end
  return nil
end

local function add_entry(key)
  add_slot(key, uuid, expires, life, now)
end

-- A retried order (the reply to the first attempt was lost) changes nothing more.
local retried = redis.call('GET', record_key)
if retried then return answer('reserved', retried) end
-- The caller's shield entry and sighting, in one read of the caller's hash.
local shield_owner, seen_raw = false, false
if who_key ~= '' and (shield_field ~= '' or seen_field ~= '') then
  local got = redis.call('HMGET', who_key, shield_field, seen_field)
  shield_owner, seen_raw = shield_field ~= '' and got[1], seen_field ~= '' and got[2]
end

local rate_key = take()
local interval, tolerance = tonumber(take()), tonumber(take())
if rate_key ~= '' then
  -- domain.reserve.gcra
  local tat = tonumber(redis.call('GET', rate_key))
  local start = now
  if tat and tat >= now then start = tat end
  local wait = start - now - tolerance
  if wait > epsilon then return answer('rate-limited', nil, nil, nil, wait) end
  if not dry then set_for(rate_key, fmt(start + interval), start + interval - now) end
end
if shield_owner then
  local _, raw = live_record(shield_owner, now)
  if raw then return answer('shielded', raw) end
end

-- The caller's last sighting, as stored and as a number.
local seen, seen_at = nil, nil
if seen_raw then
  local bar = string.find(seen_raw, '|', 1, true)
  if tonumber(string.sub(seen_raw, bar + 1)) > now then
    seen = string.sub(seen_raw, 1, bar - 1)
    seen_at = tonumber(seen)
  end
end

local pool = {}
for p = 1, tonumber(take()) do pool[p] = {take(), take(), take()} end  -- number, JSON, key
-- domain.reserve.choose_option (1-based).
local options = tonumber(take())
local option = nil
for index = 1, options do
  local window = tonumber(take())
  if not option and (window <= 0 or seen_at == nil or now - seen_at >= window) then
    option = index
  end
end
if not option then return answer('duplicate', nil, nil, seen) end
local publisher = take() == '1' and take_subject()
if publisher and blocking(publisher) then return answer('publisher-capped', nil, nil, seen) end

local function free_pool_number()
  for _, entry in ipairs(pool) do
    if not live_record(redis.call('GET', entry[3]), now) then return entry end
  end
  return nil
end

-- The record a candidate's `body` (its JSON without the inbound and pool numbers and the
-- closing brace) becomes, stored unless this is a probe or a dry run.
local function store(body, subjects, number, number_json, pool_entry)
  local raw = body .. ',"i":' .. number_json
  if pool_entry then raw = raw .. ',"pn":' .. pool_entry[2] end
  raw = raw .. '}'
  if dry then return raw end
  redis.call('SET', record_key, raw, 'EX', life_text)
  if pool_entry then redis.call('SET', pool_entry[3], uuid, 'EX', life_text) end
  if who_key ~= '' then
    local fields = {'m:' .. number .. ':' .. uuid, expires}
    if shield_field ~= '' then fields[3], fields[4] = shield_field, uuid end
    if seen_field ~= '' then fields[#fields + 1], fields[#fields + 2] = seen_field, seen_value end
    redis.call('HSET', who_key, unpack(fields))
    keep_who(who_key, who_life, now)
  end
  if hold then
    for _, subject in ipairs(subjects) do
      add_entry(subject[1])
      add_entry(subject[2])
    end
    if publisher then
      add_entry(publisher[1])
      add_entry(publisher[2])
    end
  end
  return raw
end

local blocked = {}
local candidates = tonumber(take())
for _ = 1, candidates do
  local target, dedupe = tonumber(take()), tonumber(take())
  local own_number, own_json = take(), take()
  local subjects = {}
  for s = 1, tonumber(take()) do subjects[s] = take_subject() end
  local bodies = i
  i = i + options
  local reason
  if dedupe > 0 and seen_at ~= nil and now - seen_at < dedupe then
    reason = 'duplicate'
  else
    for _, subject in ipairs(subjects) do
      reason = blocking(subject)
      if reason then break end
    end
  end
  if reason then
    blocked[#blocked + 1] = {target, reason}
  elseif not probe then
    local body = A[bodies + option - 1]
    if body == '' then return answer('unpriced', nil, blocked, seen) end
    local number, number_json, pool_entry = inbound, inbound_json, nil
    if own_number ~= '' then
      number, number_json = own_number, own_json
    elseif #pool > 0 then
      pool_entry = free_pool_number()
      if not pool_entry then return answer('no-pool-number', nil, blocked, seen) end
      number, number_json = pool_entry[1], pool_entry[2]
    end
    return answer('reserved', store(body, subjects, number, number_json, pool_entry), blocked, seen)
  end
end
if probe and #blocked < candidates then return answer('available', nil, blocked, seen) end
return answer('no-target', nil, blocked, seen)
