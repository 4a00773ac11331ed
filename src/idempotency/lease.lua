-- Releases or renews a claim if the caller's token is current.
-- KEYS[1]: the effect key.
-- ARGV[1]: token; ARGV[2]: 'release' or 'renew'; ARGV[3]: lease in ms (renew).
-- Returns 1 when done, 0 when the token is not current or not in progress.
local key = KEYS[1]
if redis.call('TYPE', key)['ok'] ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', key, 'state', 'token')
if record[1] ~= 'in_progress' or tonumber(record[2]) ~= tonumber(ARGV[1]) then
  return 0
end
if ARGV[2] == 'release' then
  redis.call('HSET', key, 'state', 'released')
  redis.call('HDEL', key, 'lease_until')
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('HSET', key, 'lease_until', now + tonumber(ARGV[3]))
return 1
