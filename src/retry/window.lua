-- Opens, advances or closes a retry window in one round trip, with times from
-- the server's clock so that every process agrees on them.
-- KEYS[1]: retry:window:<job_id>
-- ARGV[1]: 'start' | 'increment' | 'close'; ARGV[2]: job type (start);
-- ARGV[3]: ttl in ms (start, increment).
-- Returns {job_type, first_ms, last_ms, attempts}, or false when there is no
-- window (increment, close), or an error reply naming a corrupted window.
local key = KEYS[1]
local op = ARGV[1]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

if op == 'start' then
  redis.call('DEL', key)
  redis.call('HSET', key, 'job_type', ARGV[2], 'first', now, 'last', now, 'attempts', 1)
  redis.call('PEXPIRE', key, tonumber(ARGV[3]))
  return {ARGV[2], now, now, 1}
end

local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then return false end
if kind ~= 'hash' then
  return redis.error_reply('CORRUPT the key holds a ' .. kind .. ', not a retry window (a hash)')
end
local window = redis.call('HMGET', key, 'job_type', 'first', 'last', 'attempts')
local first = tonumber(window[2])
local attempts = tonumber(window[4])
if not window[1] or not first or not attempts then
  return redis.error_reply('CORRUPT the retry window has no valid job_type, first and attempts fields')
end
if op == 'increment' then
  attempts = redis.call('HINCRBY', key, 'attempts', 1)
  redis.call('HSET', key, 'last', now)
  redis.call('PEXPIRE', key, tonumber(ARGV[3]))
  return {window[1], first, now, attempts}
end
redis.call('DEL', key)
return {window[1], first, now, attempts}
