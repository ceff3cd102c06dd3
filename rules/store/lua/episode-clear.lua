-- episode-clear: end the active episode of a rule on a scope.
-- KEYS[1]  episode hash
-- KEYS[2]  sorted set of active episodes
-- ARGV[1]  member (scope key)
-- ARGV[2]  now (ms)
-- ARGV[3]  quietBefore (ms) or "" : clear only if the last match is <= quietBefore
-- Returns: the episode start (firedAt) when it was active and is now cleared, else nil
local e = redis.call('HMGET', KEYS[1], 'active', 'firedAt', 'lastMatch')
if e[1] ~= '1' then return nil end
if ARGV[3] ~= '' and tonumber(e[3]) > tonumber(ARGV[3]) then return nil end
redis.call('HSET', KEYS[1], 'active', '0')
redis.call('ZREM', KEYS[2], ARGV[1])
return tonumber(e[2])
