-- Opens, advances or closes a retry window in one round trip, with times from
-- the server's clock so that every process agrees on them. Each redis.call
-- costs microseconds, so the paths use as few as they can.
-- KEYS[1]: retry:window:<job_id>
-- ARGV[1]: 'start' | 'increment' | 'close'; ARGV[2]: job type (start);
-- ARGV[3]: ttl in ms (start): the window expires that long after it started.
-- Returns {job_type, first_ms, last_ms, attempts}, or false when there is no
-- window (increment, close), or an error reply naming a corrupted window.
local key = KEYS[1]
local op = ARGV[1]
-- A failed write or read: a key of another type is a corrupted window; any
-- other refusal (OOM under maxmemory, READONLY...) is passed on as it is.
local function refused(reply)
  if string.sub(reply['err'], 1, 9) == 'WRONGTYPE' then
    return redis.error_reply('CORRUPT the key holds a ' .. redis.call('TYPE', key)['ok'] ..
                             ', not a retry window (a hash)')
  end
  return redis.error_reply(reply['err'])
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

if op == 'start' then
  -- Every field is written, so a restarted window keeps nothing of the old one.
  local written = redis.pcall('HSET', key, 'job_type', ARGV[2], 'first', now, 'last', now,
                              'attempts', 1)
  if type(written) == 'table' and written['err'] then return refused(written) end
  redis.call('PEXPIRE', key, tonumber(ARGV[3]))
  return {ARGV[2], now, now, 1}
end

local window = redis.pcall('HMGET', key, 'job_type', 'first', 'attempts')
if window['err'] then return refused(window) end
local first = tonumber(window[2])
local attempts = tonumber(window[3])
if not window[1] and not first and not attempts then
  if redis.call('EXISTS', key) == 0 then return false end
end
if not window[1] or not first or not attempts then
  return redis.error_reply('CORRUPT the retry window has no valid job_type, first and attempts fields')
end
if op == 'increment' then
  attempts = attempts + 1
  redis.call('HSET', key, 'attempts', attempts, 'last', now)
  return {window[1], first, now, attempts}
end
redis.call('DEL', key)
return {window[1], first, now, attempts}
