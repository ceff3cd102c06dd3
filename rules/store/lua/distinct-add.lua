-- distinct-add: record that a member (node) was seen, return distinct members in the window.
-- KEYS[1]  sorted set: member = node name, score = latest time seen (ms)
-- ARGV[1]  member
-- ARGV[2]  ts (ms)
-- ARGV[3]  windowMs
-- ARGV[4]  ttlMs
-- Returns: number of members with score in (ts - windowMs, ts]
local ts = tonumber(ARGV[2])
local from = ts - tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'GT', ts, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', from)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCOUNT', KEYS[1], '(' .. from, ts)
