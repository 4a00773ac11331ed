-- Claims an effect record. One round trip decides everything.
-- KEYS[1]: the effect key.
-- ARGV[1]: the request fingerprint ('' = not compared)
-- ARGV[2]: lease in ms; ARGV[3]: ttl in ms (for a new or taken-over record)
-- ARGV[4]: the new claim's holder id (unique to this claim)
-- Returns {status, token, payload, stored fingerprint, ms the record lives}:
--   CLAIMED | RECOVERED (token = the caller's), COMPLETED (payload = result),
--   UNAVAILABLE (done, result not stored; payload = why), IN_PROGRESS
--   (payload = ms left on the lease), CONFLICT, FAILED (payload = recorded
--   error), CORRUPT (payload = why).
-- Lease time comes from the server's clock, so client clock skew cannot break
-- it. A new record's token is the server's time in microseconds, so tokens
-- keep growing when a record is lost (evicted, deleted, expired) and claimed
-- anew, unless the server's clock goes back; the holder id tells claims apart
-- even then. Tokens stay below 2^53 (until the year 2255), exact in Lua.
local key = KEYS[1]
local fingerprint = ARGV[1]
local lease = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local holder = ARGV[4]
local function num(n) return string.format('%.0f', n) end
-- The server's clock in microseconds; read only on the paths that need it,
-- so a duplicate (the hot path) costs three commands.
local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then
  local now = now_us()
  local now_ms = math.floor(now / 1000)
  redis.call('HSET', key, 'state', 'in_progress', 'token', num(now), 'holder', holder,
             'fp', fingerprint, 'lease_until', num(now_ms + lease), 'created', num(now_ms))
  redis.call('PEXPIRE', key, ttl)
  return {'CLAIMED', now, '', '', ttl}
end
if kind ~= 'hash' then
  return {'CORRUPT', 0, 'the key holds a ' .. kind .. ', not an effect record (a hash)', '', 0}
end

local record = redis.call('HMGET', key, 'state', 'token', 'fp', 'lease_until', 'result', 'error',
                          'revived')
local state = record[1]
local token = tonumber(record[2])
if not state or not token or token < 1 or token ~= math.floor(token) then
  return {'CORRUPT', 0, 'the record has no valid state and token fields', '', 0}
end
local stored_fp = record[3] or ''

if state ~= 'released' and fingerprint ~= '' and stored_fp ~= '' and fingerprint ~= stored_fp then
  return {'CONFLICT', token, stored_fp, stored_fp, 0}
end
if state == 'completed' then
  return {'COMPLETED', token, record[5] or '', stored_fp, redis.call('PTTL', key)}
end
if state == 'unavailable' then
  return {'UNAVAILABLE', token, record[6] or '', stored_fp, redis.call('PTTL', key)}
end
if state == 'failed' then
  return {'FAILED', token, record[6] or '', stored_fp, 0}
end

local now = now_us()
local now_ms = math.floor(now / 1000)
if state == 'in_progress' then
  local lease_until = tonumber(record[4])
  if not lease_until then
    return {'CORRUPT', 0, 'the record has no valid lease_until field', '', 0}
  end
  if lease_until > now_ms then
    return {'IN_PROGRESS', token, num(lease_until - now_ms), stored_fp, 0}
  end
elseif state ~= 'released' then
  return {'CORRUPT', 0, 'unknown state ' .. state, '', 0}
end

-- An expired lease, or a claim released after its effect threw: either way a
-- previous run may have acted, so the taker is told it is recovering.
token = token + 1
-- A record a renewal wrote anew carries its holder's old token, below tokens
-- issued while it was gone: the clock keeps the new one above them.
if record[7] then token = math.max(token, now) end
if fingerprint == '' then fingerprint = stored_fp end
redis.call('HSET', key, 'state', 'in_progress', 'token', num(token), 'holder', holder,
           'fp', fingerprint, 'lease_until', num(now_ms + lease))
redis.call('HDEL', key, 'revived')
redis.call('PEXPIRE', key, ttl)
return {'RECOVERED', token, '', stored_fp, ttl}
