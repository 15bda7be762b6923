-- wrk script: POST /rtbs.json pings, each from a caller number never used before in the run.
--
-- Environment:
--   CALLBID_BENCH_KEY        RTB key (required)
--   CALLBID_BENCH_PUBLISHER  publisher_id (required)
--   CALLBID_BENCH_OFFSET     index of the first caller number (default 0), so that successive
--                            runs against one server use disjoint numbers
--   CALLBID_BENCH_COUNT      "1": count responses by HTTP code and JSON "status" and print the
--                            counts when done (costs wrk some throughput); default off
--
-- Caller numbers are valid NANP numbers +1 AAA EEE LLLL (area codes below, exchange 200-999,
-- line 0000-9999): 6 x 800 x 10000 = 48 million before they repeat. Each wrk thread starts
-- THREAD_STRIDE numbers after the previous one.

local AREAS = { 212, 646, 917, 718, 347, 929 }
local PER_AREA = 800 * 10000
local SPACE = #AREAS * PER_AREA
local THREAD_STRIDE = 1000000

local function urlencode(text)
  return (text:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

local prefix = "key=" .. urlencode(required("CALLBID_BENCH_KEY"))
  .. "&publisher_id=" .. urlencode(required("CALLBID_BENCH_PUBLISHER"))
  .. "&caller_number="
local offset = tonumber(os.getenv("CALLBID_BENCH_OFFSET") or "0")
local counting = os.getenv("CALLBID_BENCH_COUNT") == "1"
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

-- Thread state (each wrk thread runs its own copy of this script).
id = 0
sent = 0
codes = {}
statuses = {}

local function caller(n)
  n = n % SPACE
  local area = AREAS[math.floor(n / PER_AREA) + 1]
  local rest = n % PER_AREA
  return string.format("%%2B1%d%03d%04d", area, 200 + math.floor(rest / 10000), rest % 10000)
end

-- Every caller number encodes to the same length, so every request is the same bytes but
-- for the number: wrk.format runs once (it needs the Host header wrk sets before the first
-- request), and each request is three strings joined: about 8 us less of wrk's CPU a request
-- (of about 50, most of it wrk's own socket I/O), which on a shared core the servers get.
local head, tail

local function split_template()
  local marker = caller(0)
  local text = wrk.format("POST", nil, headers, prefix .. marker .. "&caller_zip=10001")
  local at = text:find(marker, 1, true)
  return text:sub(1, at - 1), text:sub(at + #marker)
end

function request()
  if head == nil then
    head, tail = split_template()
  end
  local number = caller(offset + id * THREAD_STRIDE + sent)
  sent = sent + 1
  return head .. number .. tail
end

if counting then
  function response(status, _, body)
    codes[status] = (codes[status] or 0) + 1
    local answer = body and body:match('"status"%s*:%s*"([^"]*)"') or "(none)"
    statuses[answer] = (statuses[answer] or 0) + 1
  end
end

-- Main-thread state: the threads, to read their counters when done.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function add_all(total, part)
  for name, count in pairs(part or {}) do
    total[name] = (total[name] or 0) + count
  end
end

function done()
  if not counting then
    return
  end
  local all_codes, all_statuses = {}, {}
  for _, thread in ipairs(threads) do
    add_all(all_codes, thread:get("codes"))
    add_all(all_statuses, thread:get("statuses"))
  end
  for code, count in pairs(all_codes) do
    io.write(string.format("callbid-count code %d %s\n", count, tostring(code)))
  end
  for status, count in pairs(all_statuses) do
    io.write(string.format("callbid-count status %d %s\n", count, status))
  end
end
