-- wrk script: ping.lua's pings (a fresh caller number each, answers counted), plus the share
-- of answers later than the RTB key's deadline, read from wrk's latency histogram.
--
-- Environment: ping.lua's, and
--   CALLBID_BENCH_DEADLINE_MS  the key's timeout; answers slower than this are late (required)
--
-- When done it prints, after ping.lua's count lines, one line
--   callbid-late deadline_us=D max_us=M within_pct=P timeouts=T
-- P is the percentage of the answers wrk recorded that took at most D µs (100 when the slowest,
-- M, did) and T wrk's timeout count (answers slower than its --timeout are left out of the
-- histogram; the bench sets that far above the deadline).
--
-- wrk's latency:percentile(p) is the smallest latency v with at least round(p * n / 100 + 0.5)
-- of the n recorded answers at most v, so it is at most D exactly while p < 100 * L / n, L
-- being the answers within D: bisecting p for that bound gives L / n to within 2^-40, and the
-- count of late answers, n - L, exactly once multiplied by n (wrk's stats scan is O(range) a
-- call, so 50 calls cost little where a scan over 0.01 % steps would cost 100,000).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "ping.lua")

local deadline_ms = tonumber(os.getenv("CALLBID_BENCH_DEADLINE_MS") or "")
if deadline_ms == nil then
  error("CALLBID_BENCH_DEADLINE_MS is not set")
end
local deadline_us = math.floor(deadline_ms * 1000)
local counted_done = done
local STEPS = 50

-- The percentage of recorded answers within the deadline; callers make sure some were not.
local function within_pct(latency)
  local low, high = 0, 100 -- percentile(low) <= deadline < percentile(high), or low == 0
  if latency:percentile(0) > deadline_us then
    return 0
  end
  for _ = 1, STEPS do
    local middle = (low + high) / 2
    if latency:percentile(middle) <= deadline_us then
      low = middle
    else
      high = middle
    end
  end
  return high
end

function done(summary, latency, requests)
  counted_done(summary, latency, requests)
  local recorded = summary.requests > 0 and latency.max > 0
  local pct = 100
  if recorded and latency.max > deadline_us then
    pct = within_pct(latency)
  end
  io.write(string.format(
    "callbid-late deadline_us=%d max_us=%d within_pct=%.15f timeouts=%d\n",
    deadline_us, latency.max, pct, summary.errors.timeout
  ))
end
