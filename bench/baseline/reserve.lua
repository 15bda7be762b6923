-- reserve(KEYS[1] = prefix; ARGV[1] = order JSON, ARGV[2] = gcra epsilon, ARGV[3] = '1' for a
-- dry run): one ping's order, rule for rule as MemoryHotState.reserve_now (a probe, `pr`,
-- stores nothing but the rate; a dry run stores nothing at all and answers what would be
-- stored). Reply: {status, record JSON, blocked JSON, last_seen, retry_after}, absent parts as
-- nil, times as %.17g strings.
local o = cjson.decode(ARGV[1])
local now, epsilon, dry = o.n, tonumber(ARGV[2]), ARGV[3] == '1'

local function answer(status, raw, blocked, seen, wait)
  local skipped = false
  if blocked and #blocked > 0 then skipped = cjson.encode(blocked) end
  return {status, raw or false, skipped, seen or false, wait and fmt(wait) or false}
end

-- domain.reserve.gcra: the seconds to wait, or nil once the new arrival time is stored.
local function rate_wait(rule)
  local key = P .. 'rate:' .. rule[1]
  local interval = 1.0 / rule[2]
  local tolerance = interval * math.max(rule[3] - 1, 0)
  local tat = tonumber(redis.call('GET', key))
  local start = now
  if tat and tat >= now then start = tat end
  local wait = start - now - tolerance
  if wait > epsilon then return wait end
  if dry then return nil end
  set_for(key, fmt(start + interval), start + interval - now)
  return nil
end

-- The caller's last sighting: (seen_at as stored, as a number), or nil.
local function last_seen()
  if not o.sn then return nil end
  local raw = redis.call('GET', P .. 'seen:' .. o.sn)
  if not raw then return nil end
  local bar = string.find(raw, '|', 1, true)
  if tonumber(string.sub(raw, bar + 1)) <= now then return nil end
  local seen = string.sub(raw, 1, bar - 1)
  return seen, tonumber(seen)
end

-- domain.reserve.choose_option (1-based).
local function choose_option(seen_at)
  for index, option in ipairs(o.op) do
    if option[2] <= 0 or seen_at == nil or now - seen_at >= option[2] then return index end
  end
  return nil
end

local function is_duplicate(dedupe, seen_at)
  return dedupe > 0 and seen_at ~= nil and now - seen_at < dedupe
end

local function free_pool_number()
  for _, number in ipairs(o.pl) do
    if not live_record(redis.call('GET', P .. 'pool:' .. number), now) then return number end
  end
  return nil
end

-- A buyer's live answer may override revenue (r), seconds (s) and the inbound number (i).
local function store(candidate, option, payout, pool_number)
  local subjects = {unpack(candidate[2])}
  if o.pb then subjects[#subjects + 1] = o.pb end
  local picked = o.op[option]
  local criterion = picked[1]
  if criterion == NULL then criterion = nil end
  local over = candidate[5] or {}
  local rec = {
    u = o.u, t = candidate[1], i = over.i or pool_number or o.i, c = o.c, p = fmt(payout),
    s = over.s or picked[3], r = fmt(over.r or picked[4]), cr = criterion, e = fmt(o.e),
    h = o.h, k = subject_keys(subjects), sh = o.sh, pn = pool_number,
  }
  if dry then return cjson.encode(rec) end
  local raw = save_record(rec, now)
  if o.sh then set_for(P .. 'shield:' .. o.sh, o.u, o.e - now) end
  if pool_number then set_for(P .. 'pool:' .. pool_number, o.u, o.e - now) end
  if o.c then add_slot(P .. 'm:' .. rec.i .. '|' .. o.c, o.u, o.e, now) end
  if o.h then take_slots(rec, now) end
  if o.sn then
    set_for(P .. 'seen:' .. o.sn, fmt(now) .. '|' .. fmt(now + o.st), o.st)
  end
  return raw
end

-- A retried order (the reply to the first attempt was lost) changes nothing more.
local prior = redis.call('GET', P .. 'r:' .. o.u)
if prior then return answer('reserved', prior) end
if o.rt then
  local wait = rate_wait(o.rt)
  if wait then return answer('rate-limited', nil, nil, nil, wait) end
end
if o.sh then
  local _, raw = live_record(redis.call('GET', P .. 'shield:' .. o.sh), now)
  if raw then return answer('shielded', raw) end
end
local seen, seen_at = last_seen()
local option = choose_option(seen_at)
if not option then return answer('duplicate', nil, nil, seen) end
if o.pb and blocking(o.pb, now) then return answer('publisher-capped', nil, nil, seen) end
local blocked = {}
for _, candidate in ipairs(o.cd) do
  local reason
  if is_duplicate(candidate[3], seen_at) then
    reason = 'duplicate'
  else
    reason = first_blocking(candidate[2], now)
  end
  if reason then
    blocked[#blocked + 1] = {candidate[1], reason}
  elseif not o.pr then
    local payout = candidate[4][option]
    if payout == nil or payout == NULL then return answer('unpriced', nil, blocked, seen) end
    local pool_number = nil
    if #o.pl > 0 and not (candidate[5] and candidate[5].i) then
      pool_number = free_pool_number()
      if not pool_number then return answer('no-pool-number', nil, blocked, seen) end
    end
    return answer('reserved', store(candidate, option, payout, pool_number), blocked, seen)
  end
end
if o.pr and #blocked < #o.cd then return answer('available', nil, blocked, seen) end
return answer('no-target', nil, blocked, seen)
