-- seen-touch: record the latest time a scope was seen (absent detection).
-- KEYS[1]  sorted set: member = scope, score = last seen (ms)
-- ARGV[1]  member
-- ARGV[2]  ts (ms)
-- ARGV[3]  ttlMs
-- Returns: the previous score (ms) or nil when first seen
local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if prev then return tonumber(prev) end
return nil
