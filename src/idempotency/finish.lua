-- Ends a claim (completed, failed or unavailable) if the caller still holds it.
-- KEYS[1]: the effect key.
-- ARGV[1]: token; ARGV[2]: holder id; ARGV[3]: 'completed', 'failed' or
-- 'unavailable'; ARGV[4]: result (completed) or error (the others);
-- ARGV[5]: fingerprint (to rewrite a vanished record); ARGV[6]: ttl in ms
-- (for a rewritten record; a live record keeps its expiry).
-- Returns {status, detail}: DONE, LEASE_LOST (detail = current token),
-- CORRUPT (detail = why).
-- The common path is two commands (HMGET, HSET): each redis.call costs
-- microseconds, which on a fast network is a good part of a round trip.
local key = KEYS[1]
local token = tonumber(ARGV[1])
local holder = ARGV[2]
local final_state = ARGV[3]
local field = final_state == 'completed' and 'result' or 'error'

local record = redis.pcall('HMGET', key, 'state', 'token', 'holder')
if record['err'] then
  return {'CORRUPT', 'the key holds a ' .. redis.call('TYPE', key)['ok'] ..
                     ', not an effect record (a hash)'}
end
if not record[1] and not record[2] then
  if redis.call('EXISTS', key) == 1 then
    return {'CORRUPT', 'the record has no state and token fields'}
  end
  -- Expired, evicted or deleted while the effect ran, and not claimed since
  -- (that would have created it): the outcome is written anew.
  local time = redis.call('TIME')
  redis.call('HSET', key, 'state', final_state, 'token', ARGV[1], 'holder', holder, 'fp', ARGV[5],
             field, ARGV[4], 'created',
             string.format('%.0f', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)))
  redis.call('PEXPIRE', key, tonumber(ARGV[6]))
  return {'DONE', 'recreated'}
end
local current = tonumber(record[2])
if not record[1] or not current then
  return {'CORRUPT', 'the record has no valid state and token fields'}
end
-- A record written before holder ids existed is matched on its token alone.
if current ~= token or (record[3] and record[3] ~= holder) then
  return {'LEASE_LOST', record[2]}
end
if record[1] == final_state then
  return {'DONE', 'already'}
end
if record[1] ~= 'in_progress' then
  return {'LEASE_LOST', record[2]}
end
redis.call('HSET', key, 'state', final_state, field, ARGV[4])
return {'DONE', ''}
