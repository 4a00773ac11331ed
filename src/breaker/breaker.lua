-- A fleet-wide circuit breaker: one hash per job type, every transition
-- decided here, in one script, so exactly one caller sees it happen.
-- KEYS[1]: circuit:<job_type>
-- ARGV: 1 op ('record'|'acquire'|'control'|'read'), 2 outcome ('success'|
-- 'failure') or command ('force_open'|'force_close'|'disable'|'reset'),
-- 3 failure_threshold, 4 window ms, 5 buckets, 6 failure_ratio (0: count
-- mode), 7 minimum_throughput, 8 break ms, 9 break multiplier, 10 max break
-- ms, 11 half-open probes, 12 max half-open wait ms, 13 pub/sub channel.
-- Returns {state, previous, transitioned, allowed, failures, successes, trips,
-- retry_after_ms}. The window is a ring of `buckets` buckets (fields e<i>
-- (which bucket it holds), f<i>, s<i>), so the hash stays the same size
-- whatever the event rate; probe permits are fields p1..p<probes>. The key
-- has no TTL: one small hash per job type.
local key = KEYS[1]
local op, arg = ARGV[1], ARGV[2]
local threshold, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local buckets, ratio = tonumber(ARGV[5]), tonumber(ARGV[6])
local min_calls, break_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
local multiplier, max_break = tonumber(ARGV[9]), tonumber(ARGV[10])
local probes, probe_wait = tonumber(ARGV[11]), tonumber(ARGV[12])
local channel = ARGV[13]

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local bucket_ms = math.max(1, math.floor(window / buckets))
local index = math.floor(now / bucket_ms)

local fields = {'state', 'trips', 'open_until'}
for i = 0, buckets - 1 do
  fields[#fields + 1] = 'e' .. i
  fields[#fields + 1] = 'f' .. i
  fields[#fields + 1] = 's' .. i
end
local values = redis.pcall('HMGET', key, unpack(fields))
if values['err'] then
  return redis.error_reply('CORRUPT the key holds a ' .. redis.call('TYPE', key)['ok'] ..
                           ', not a circuit breaker (a hash)')
end
local state = values[1] or 'CLOSED'
if state ~= 'CLOSED' and state ~= 'OPEN' and state ~= 'HALF_OPEN' and state ~= 'FORCED_OPEN'
    and state ~= 'DISABLED' then
  return redis.error_reply('CORRUPT unknown circuit state ' .. state)
end
local trips = tonumber(values[2] or '0') or 0
local open_until = tonumber(values[3] or '0') or 0
local previous = state
local transitioned = 0
local allowed = 1

local failures, successes = 0, 0
local cleared = false
local function count_window()
  if cleared then return end
  failures, successes = 0, 0
  for i = 0, buckets - 1 do
    local epoch = tonumber(values[4 + 3 * i])
    if epoch and epoch > index - buckets then
      failures = failures + (tonumber(values[5 + 3 * i]) or 0)
      successes = successes + (tonumber(values[6 + 3 * i]) or 0)
    end
  end
end

local function clear_window()
  local names = {}
  for i = 0, buckets - 1 do
    names[#names + 1] = 'e' .. i
    names[#names + 1] = 'f' .. i
    names[#names + 1] = 's' .. i
  end
  for i = 1, probes do names[#names + 1] = 'p' .. i end
  redis.call('HDEL', key, unpack(names))
  failures, successes = 0, 0
  cleared = true
end

-- Publishes "<STATE>:<ms the break lasts>" so subscribers can answer
-- can_retry() locally until the break ends.
local function move(to)
  if to == state then return end
  state = to
  transitioned = 1
  redis.call('HSET', key, 'state', to)
  local left = 0
  if to == 'OPEN' then left = math.max(0, open_until - now) end
  redis.call('PUBLISH', channel, to .. ':' .. left)
end

local function open()
  trips = trips + 1
  local duration = math.min(max_break, math.floor(break_ms * multiplier ^ (trips - 1)))
  open_until = now + duration
  clear_window()
  redis.call('HSET', key, 'trips', trips, 'open_until', open_until)
  move('OPEN')
end

local function close()
  trips = 0
  clear_window()
  redis.call('HSET', key, 'trips', 0, 'open_until', 0)
  move('CLOSED')
end

-- Automatic recovery: an expired break becomes HALF_OPEN on the next look.
if state == 'OPEN' and now >= open_until and (op == 'record' or op == 'acquire') then
  move('HALF_OPEN')
end

if op == 'record' then
  if state == 'HALF_OPEN' then
    if arg == 'success' then close() else open() end
  elseif state == 'CLOSED' then
    local slot = index % buckets
    local at = 4 + 3 * slot
    local f, s = 0, 0
    if tonumber(values[at]) == index then
      f, s = tonumber(values[at + 1]) or 0, tonumber(values[at + 2]) or 0
    end
    if arg == 'failure' then f = f + 1 else s = s + 1 end
    values[at], values[at + 1], values[at + 2] = tostring(index), tostring(f), tostring(s)
    redis.call('HSET', key, 'e' .. slot, index, 'f' .. slot, f, 's' .. slot, s)
    if not values[1] then redis.call('HSET', key, 'state', 'CLOSED') end
    count_window()
    local trip
    if ratio > 0 then
      local calls = failures + successes
      trip = calls >= min_calls and failures / calls >= ratio
    else
      trip = failures >= threshold
    end
    if trip then
      local seen = failures
      open()
      failures = seen
    end
  end
elseif op == 'acquire' then
  if state == 'FORCED_OPEN' then
    allowed = 0
  elseif state == 'OPEN' then
    allowed = 0
  elseif state == 'HALF_OPEN' then
    allowed = 0
    local soonest = nil
    for i = 1, probes do
      local held = tonumber(redis.call('HGET', key, 'p' .. i))
      if not held or held <= now then
        redis.call('HSET', key, 'p' .. i, now + probe_wait)
        allowed = 1
        break
      end
      if not soonest or held < soonest then soonest = held end
    end
    if allowed == 0 and soonest then open_until = soonest end
  end
elseif op == 'control' then
  if arg == 'force_open' then
    move('FORCED_OPEN')
  elseif arg == 'force_close' then
    close()
  elseif arg == 'disable' then
    move('DISABLED')
  else
    close()
  end
else
  count_window()
end

if op ~= 'record' then count_window() end
local retry_after = 0
if state == 'OPEN' or (state == 'HALF_OPEN' and allowed == 0) then
  retry_after = math.max(0, open_until - now)
end
return {state, previous, transitioned, allowed, failures, successes, trips, retry_after}
