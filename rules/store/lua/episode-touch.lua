-- episode-touch: a matching event while an episode is active (for clear.after).
-- KEYS[1]  episode hash
-- KEYS[2]  sorted set of active episodes (score = lastMatch)
-- ARGV[1]  member (scope key)
-- ARGV[2]  now (ms)
-- Returns: nil
local now = tonumber(ARGV[2])
local e = redis.call('HMGET', KEYS[1], 'active', 'lastMatch')
if e[1] == '1' and now > tonumber(e[2]) then
  redis.call('HSET', KEYS[1], 'lastMatch', now)
  if redis.call('ZSCORE', KEYS[2], ARGV[1]) then redis.call('ZADD', KEYS[2], now, ARGV[1]) end
end
return nil
