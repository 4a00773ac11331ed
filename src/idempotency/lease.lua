-- Releases or renews a claim if the caller still holds it.
-- KEYS[1]: the effect key.
-- ARGV[1]: token; ARGV[2]: holder id; ARGV[3]: 'release' or 'renew';
-- ARGV[4]: lease in ms; ARGV[5]: ttl in ms; ARGV[6]: fingerprint (renew).
-- Returns 1 when done, 0 when another claim holds the record or it ended.
-- A renewal keeps the record alive for at least ttl, and writes a record that
-- vanished under a live effect (evicted, deleted, expired) anew, so that no
-- second claim can start while this holder runs.
local key = KEYS[1]
local renew = ARGV[3] == 'renew'
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then
  if not renew then return 0 end
  local now = now_ms()
  -- 'revived': its token is older than tokens issued while it was gone, so a
  -- recovery of it takes its token from the clock (claim.lua).
  redis.call('HSET', key, 'state', 'in_progress', 'token', ARGV[1], 'holder', ARGV[2],
             'fp', ARGV[6], 'lease_until', string.format('%.0f', now + tonumber(ARGV[4])),
             'created', string.format('%.0f', now), 'revived', '1')
  redis.call('PEXPIRE', key, tonumber(ARGV[5]))
  return 1
end
if kind ~= 'hash' then
  return 0
end
local record = redis.call('HMGET', key, 'state', 'token', 'holder')
if record[1] ~= 'in_progress' or tonumber(record[2]) ~= tonumber(ARGV[1]) or
   (record[3] and record[3] ~= ARGV[2]) then
  return 0
end
if not renew then
  redis.call('HSET', key, 'state', 'released')
  redis.call('HDEL', key, 'lease_until')
  return 1
end
redis.call('HSET', key, 'lease_until', string.format('%.0f', now_ms() + tonumber(ARGV[4])))
local ttl = tonumber(ARGV[5])
local left = redis.call('PTTL', key)
if left >= 0 and left < ttl then
  redis.call('PEXPIRE', key, ttl)
end
return 1
