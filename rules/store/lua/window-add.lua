-- window-add: add one event to a sliding count window, return the count.
-- KEYS[1]  sorted set: member = event id, score = event time (ms)
-- ARGV[1]  member (event id; re-adding the same id is a no-op: idempotent replays)
-- ARGV[2]  ts (ms)
-- ARGV[3]  windowMs
-- ARGV[4]  ttlMs (key expiry, refreshed on every add)
-- Returns: number of members with score in (ts - windowMs, ts]
local ts = tonumber(ARGV[2])
local from = ts - tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'NX', ts, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', from)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCOUNT', KEYS[1], '(' .. from, ts)
