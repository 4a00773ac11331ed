-- Commits a result (or records a failure) if the caller's token is current.
-- KEYS[1]: the effect key.
-- ARGV[1]: token; ARGV[2]: 'completed' or 'failed'; ARGV[3]: result or error;
-- ARGV[4]: fingerprint (to rewrite a vanished record); ARGV[5]: ttl in ms
-- (for a rewritten record; a live record keeps the expiry its claim set).
-- Returns {status, detail}: DONE, LEASE_LOST (detail = current token),
-- CORRUPT (detail = why).
-- The common path is two commands (HMGET, HSET): each redis.call costs
-- microseconds, which on a fast network is a good part of a round trip.
local key = KEYS[1]
local token = tonumber(ARGV[1])
local final_state = ARGV[2]
local field = final_state == 'completed' and 'result' or 'error'

local record = redis.pcall('HMGET', key, 'state', 'token')
if record['err'] then
  return {'CORRUPT', 'the key holds a ' .. redis.call('TYPE', key)['ok'] ..
                     ', not an effect record (a hash)'}
end
if not record[1] and not record[2] then
  if redis.call('EXISTS', key) == 1 then
    return {'CORRUPT', 'the record has no state and token fields'}
  end
  -- Expired or evicted while the effect ran: nobody else claimed it since
  -- (that would have created it), so the result is written anew.
  local time = redis.call('TIME')
  redis.call('HSET', key, 'state', final_state, 'token', token, 'fp', ARGV[4], field, ARGV[3],
             'created', tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
  redis.call('PEXPIRE', key, tonumber(ARGV[5]))
  return {'DONE', 'recreated'}
end
local current = tonumber(record[2])
if not record[1] or not current then
  return {'CORRUPT', 'the record has no valid state and token fields'}
end
if current ~= token then
  return {'LEASE_LOST', tostring(current)}
end
if record[1] == final_state then
  return {'DONE', 'already'}
end
if record[1] ~= 'in_progress' then
  return {'LEASE_LOST', tostring(current)}
end
redis.call('HSET', key, 'state', final_state, field, ARGV[3])
return {'DONE', ''}
