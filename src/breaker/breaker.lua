-- A fleet-wide circuit breaker: one hash per job type, every transition
-- decided here, in one script, so exactly one caller sees it happen.
-- KEYS[1]: circuit:<job_type>
-- ARGV: 1 op ('record'|'acquire'|'control'|'read'), 2 outcome ('success'|
-- 'failure') or command ('force_open'|'force_close'|'disable'|'reset'),
-- 3 failure_threshold, 4 window ms, 5 buckets, 6 failure_ratio (0: count
-- mode), 7 minimum_throughput, 8 break ms, 9 break multiplier, 10 max break
-- ms, 11 half-open probes, 12 max half-open wait ms, 13 pub/sub channel,
-- 14 the probe permit the recorded outcome's caller holds ('0': none),
-- 15 control's actor ('' for none).
-- Returns {state, previous, transitioned, allowed, failures, successes, trips,
-- retry_after_ms, permit, forced_by, forced_at} (permit: the one acquire
-- handed out, else 0; forced_by and forced_at: who forced the state and when,
-- server ms, kept in the hash as fields forced_by and forced_at from a
-- force_open, force_close or disable until a reset or the breaker's own next
-- transition; '' and 0 when nothing forced holds).
-- The window is a ring of `buckets` buckets (fields e<i> (which bucket the
-- slot holds), f<i>, s<i>) plus running totals fc and sc of the buckets up
-- to `last` (the newest bucket written), so the hash stays the same size
-- whatever the event rate, and a record reads only the totals and its own
-- bucket: the ring is walked only when buckets rotate out. Probe permit i is
-- p<i> (when it frees, server ms) and t<i> (its id: the server ms it was
-- handed out * 128 + i, unique while the server's clock moves forward). In
-- HALF_OPEN only an outcome carrying a live permit's id decides; others are
-- counted in the window. The key has no TTL: one small hash per job type.
local key = KEYS[1]
local op, arg = ARGV[1], ARGV[2]
local threshold, window = tonumber(ARGV[3]), tonumber(ARGV[4])
local buckets, ratio = tonumber(ARGV[5]), tonumber(ARGV[6])
local min_calls, break_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
local multiplier, max_break = tonumber(ARGV[9]), tonumber(ARGV[10])
local probes, probe_wait = tonumber(ARGV[11]), tonumber(ARGV[12])
local channel = ARGV[13]
local permit = tonumber(ARGV[14]) or 0
local actor = ARGV[15] or ''

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local bucket_ms = math.max(1, math.floor(window / buckets))
local index = math.floor(now / bucket_ms)
local slot = index % buckets

local function read(...)
  local values = redis.pcall('HMGET', key, ...)
  if values['err'] then
    return nil, redis.error_reply('CORRUPT the key holds a ' .. redis.call('TYPE', key)['ok'] ..
                                  ', not a circuit breaker (a hash)')
  end
  return values
end

-- state, trips, open_until, last, fc, sc, this slot's e, f, s, then who
-- forced the state and when.
local head, problem = read('state', 'trips', 'open_until', 'last', 'fc', 'sc',
                           'e' .. slot, 'f' .. slot, 's' .. slot, 'forced_by', 'forced_at')
if not head then return problem end
local state = head[1] or 'CLOSED'
if state ~= 'CLOSED' and state ~= 'OPEN' and state ~= 'HALF_OPEN' and state ~= 'FORCED_OPEN'
    and state ~= 'DISABLED' then
  return redis.error_reply('CORRUPT unknown circuit state ' .. state)
end
local trips = tonumber(head[2] or '0') or 0
local open_until = tonumber(head[3] or '0') or 0
local last = tonumber(head[4] or '')
local failures = tonumber(head[5] or '0') or 0
local successes = tonumber(head[6] or '0') or 0
local forced_by = head[10] or ''
local forced_at = tonumber(head[11] or '0') or 0
local previous = state
local transitioned = 0
local allowed = 1

local function ring_names(from, to)
  local names = {}
  for j = from, to do
    local i = j % buckets
    names[#names + 1] = 'e' .. i
    names[#names + 1] = 'f' .. i
    names[#names + 1] = 's' .. i
  end
  return names
end

local function clear_window()
  local names = ring_names(0, buckets - 1)
  names[#names + 1] = 'last'
  names[#names + 1] = 'fc'
  names[#names + 1] = 'sc'
  for i = 1, probes do
    names[#names + 1] = 'p' .. i
    names[#names + 1] = 't' .. i
  end
  redis.call('HDEL', key, unpack(names))
  failures, successes, last = 0, 0, nil
end

-- What the buckets after `last` up to `index` held that has left the
-- window (their slots last held buckets <= index - buckets), and their names.
local function leaving()
  local names = ring_names(last + 1, index)
  local old = redis.call('HMGET', key, unpack(names))
  local f, s = 0, 0
  for k = 0, #names / 3 - 1 do
    local bucket = tonumber(old[3 * k + 1])
    if bucket and bucket <= index - buckets then
      f = f + (tonumber(old[3 * k + 2]) or 0)
      s = s + (tonumber(old[3 * k + 3]) or 0)
    end
  end
  return f, s, names
end

-- Moves the window's head to `index`: buckets that fall out of it leave the
-- totals. Only runs when a new bucket starts.
local function rotate()
  if last and index <= last then return end
  if not last or index - last >= buckets then
    if last then clear_window() end
    failures, successes = 0, 0
  else
    local f, s, names = leaving()
    failures, successes = failures - f, successes - s
    redis.call('HDEL', key, unpack(names))
    head[7], head[8], head[9] = nil, nil, nil  -- this slot was among them
  end
  last = index
end

-- Failures and successes in the window as of now (for reports).
local function current_totals()
  if not last or index - last >= buckets then return 0, 0 end
  if index <= last then return failures, successes end
  local f, s = leaving()
  return failures - f, successes - s
end

-- Publishes "<STATE>:<ms the break lasts>:<trips>" so watchers can answer
-- can_retry() locally until the break ends, and know how long the next
-- break would be. Callers set trips before they move.
local function move(to)
  if to == state then return end
  state = to
  transitioned = 1
  redis.call('HSET', key, 'state', to)
  -- The breaker's own transition: what was forced no longer holds.
  if op ~= 'control' and head[10] then
    redis.call('HDEL', key, 'forced_by', 'forced_at')
    forced_by, forced_at, head[10] = '', 0, nil
  end
  local left = 0
  if to == 'OPEN' then left = math.max(0, open_until - now) end
  redis.call('PUBLISH', channel, to .. ':' .. left .. ':' .. trips)
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

-- Whether `permit` is a probe permit still held (handed out in this
-- HALF_OPEN, not yet freed by its wait).
local function holds_probe()
  if permit <= 0 then return false end
  local names = {}
  for i = 1, probes do
    names[#names + 1] = 'p' .. i
    names[#names + 1] = 't' .. i
  end
  local held = redis.call('HMGET', key, unpack(names))
  for i = 1, probes do
    if tonumber(held[2 * i]) == permit then
      local frees = tonumber(held[2 * i - 1])
      return frees ~= nil and frees > now
    end
  end
  return false
end

local reported_failures, reported_successes = nil, nil
local counted = false
local granted = 0
if op == 'record' then
  if state == 'HALF_OPEN' and holds_probe() then
    if arg == 'success' then close() else open() end
  elseif state == 'CLOSED' or state == 'HALF_OPEN' then
    counted = true
    rotate()
    local f, s = 0, 0
    if tonumber(head[7]) == index then
      f, s = tonumber(head[8]) or 0, tonumber(head[9]) or 0
    end
    if arg == 'failure' then
      f, failures = f + 1, failures + 1
    else
      s, successes = s + 1, successes + 1
    end
    redis.call('HSET', key, 'e' .. slot, index, 'f' .. slot, f, 's' .. slot, s,
               'last', last, 'fc', failures, 'sc', successes)
    if not head[1] then redis.call('HSET', key, 'state', 'CLOSED') end
    local trip = false  -- in HALF_OPEN only a probe decides
    if state == 'CLOSED' then
      if ratio > 0 then
        local calls = failures + successes
        trip = calls >= min_calls and failures / calls >= ratio
      else
        trip = failures >= threshold
      end
    end
    if trip then
      reported_failures, reported_successes = failures, successes
      open()
    end
  end
elseif op == 'acquire' then
  if state == 'FORCED_OPEN' or state == 'OPEN' then
    allowed = 0
  elseif state == 'HALF_OPEN' then
    allowed = 0
    local soonest = nil
    for i = 1, probes do
      local held = tonumber(redis.call('HGET', key, 'p' .. i))
      if not held or held <= now then
        granted = now * 128 + i
        redis.call('HSET', key, 'p' .. i, now + probe_wait, 't' .. i, granted)
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
  elseif arg == 'disable' then
    move('DISABLED')
  else
    close()
  end
  if arg ~= 'reset' and actor ~= '' then
    forced_by, forced_at = actor, now
    redis.call('HSET', key, 'forced_by', actor, 'forced_at', now)
  elseif forced_by ~= '' or head[11] then
    forced_by, forced_at = '', 0
    redis.call('HDEL', key, 'forced_by', 'forced_at')
  end
end

if not reported_failures then
  if counted then
    reported_failures, reported_successes = failures, successes
  else
    reported_failures, reported_successes = current_totals()
  end
end
local retry_after = 0
if state == 'OPEN' or (state == 'HALF_OPEN' and allowed == 0) then
  retry_after = math.max(0, open_until - now)
end
return {state, previous, transitioned, allowed, reported_failures, reported_successes, trips,
        retry_after, granted, forced_by, forced_at}
