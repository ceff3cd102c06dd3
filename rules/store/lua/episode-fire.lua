-- episode-fire: start a firing episode of a rule on a scope, unless one is
-- active or the cooldown runs. Atomic, so two engine replicas never both fire.
-- KEYS[1]  hash: active (0/1), firedAt, lastMatch, cooldownUntil
-- KEYS[2]  sorted set of active episodes of the rule: member = scope, score = lastMatch
-- ARGV[1]  member (scope key)
-- ARGV[2]  now (ms)
-- ARGV[3]  cooldownMs
-- ARGV[4]  autoExpireMs (>= 0: an episode with no clear ends by itself that long after firing; -1: never)
-- ARGV[5]  ttlMs
-- Returns: now (the episode start) when it fired, else nil
local now = tonumber(ARGV[2])
local autoExpire = tonumber(ARGV[4])
local e = redis.call('HMGET', KEYS[1], 'active', 'firedAt', 'cooldownUntil')
if e[1] == '1' then
  if not (autoExpire >= 0 and now >= tonumber(e[2]) + autoExpire) then return nil end
end
if e[3] and now < tonumber(e[3]) then return nil end
redis.call('HSET', KEYS[1], 'active', '1', 'firedAt', now, 'lastMatch', now, 'cooldownUntil', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if autoExpire < 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return now
