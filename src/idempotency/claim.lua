-- Claims an effect record. One round trip decides everything.
-- KEYS[1]: the effect key.
-- ARGV[1]: the request fingerprint ('' = not compared)
-- ARGV[2]: lease in ms; ARGV[3]: ttl in ms (for a new or revived record)
-- Returns {status, token, payload}:
--   CLAIMED | RECOVERED (token = the caller's), COMPLETED (payload = result),
--   IN_PROGRESS (payload = ms left on the lease), CONFLICT (payload = stored
--   fingerprint), FAILED (payload = recorded error), CORRUPT (payload = why).
-- Lease time comes from the server's clock, so client clock skew cannot break it.
local key = KEYS[1]
local fingerprint = ARGV[1]
local lease = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
-- The server's clock in ms; read only on the paths that need it, so a
-- duplicate (the hot path) costs two commands.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local kind = redis.call('TYPE', key)['ok']
if kind == 'none' then
  local now = now_ms()
  redis.call('HSET', key, 'state', 'in_progress', 'token', 1, 'fp', fingerprint,
             'lease_until', now + lease, 'created', now)
  redis.call('PEXPIRE', key, ttl)
  return {'CLAIMED', 1, ''}
end
if kind ~= 'hash' then
  return {'CORRUPT', 0, 'the key holds a ' .. kind .. ', not an effect record (a hash)'}
end

local record = redis.call('HMGET', key, 'state', 'token', 'fp', 'lease_until', 'result', 'error')
local state = record[1]
local token = tonumber(record[2])
if not state or not token or token < 1 or token ~= math.floor(token) then
  return {'CORRUPT', 0, 'the record has no valid state and token fields'}
end
local stored_fp = record[3] or ''

if state ~= 'released' and fingerprint ~= '' and stored_fp ~= '' and fingerprint ~= stored_fp then
  return {'CONFLICT', token, stored_fp}
end
if state == 'completed' then
  return {'COMPLETED', token, record[5] or ''}
end
if state == 'failed' then
  return {'FAILED', token, record[6] or ''}
end

local now = now_ms()
local status
if state == 'in_progress' then
  local lease_until = tonumber(record[4])
  if not lease_until then
    return {'CORRUPT', 0, 'the record has no valid lease_until field'}
  end
  if lease_until > now then
    return {'IN_PROGRESS', token, tostring(lease_until - now)}
  end
  status = 'RECOVERED'
elseif state == 'released' then
  status = 'CLAIMED'
else
  return {'CORRUPT', 0, 'unknown state ' .. state}
end

token = token + 1
if fingerprint == '' then fingerprint = stored_fp end
redis.call('HSET', key, 'state', 'in_progress', 'token', token, 'fp', fingerprint,
           'lease_until', now + lease)
redis.call('PEXPIRE', key, ttl)
return {status, token, ''}
