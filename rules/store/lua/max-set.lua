-- max-set: keep the maximum of a numeric value (e.g. the last time a workload changed).
-- KEYS[1]  string
-- ARGV[1]  value
-- ARGV[2]  ttlMs
-- Returns: the stored (maximum) value
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[1])
if cur and tonumber(cur) >= v then v = tonumber(cur) else redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return v
