-- sustained-observe: one observation of a predicate that must hold continuously.
-- KEYS[1]  hash: since (ms, absent while not holding), last (ms of the latest observation)
-- KEYS[2]  sorted set of pending deadlines: member = scope, score = since
-- ARGV[1]  member (scope key)
-- ARGV[2]  ts (ms)
-- ARGV[3]  holds: "1" | "0"
-- ARGV[4]  ttlMs
-- Returns: since (ms) while the predicate holds, else nil. Observations older
-- than the last one are ignored (out-of-order delivery).
local ts = tonumber(ARGV[2])
local st = redis.call('HMGET', KEYS[1], 'since', 'last')
local since = st[1] and tonumber(st[1]) or nil
local last = st[2] and tonumber(st[2]) or nil
if last ~= nil and ts < last then return since end
redis.call('HSET', KEYS[1], 'last', ts)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[3] == '1' then
  if since == nil then
    since = ts
    redis.call('HSET', KEYS[1], 'since', ts)
    redis.call('ZADD', KEYS[2], ts, ARGV[1])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
  return since
end
if since ~= nil then
  redis.call('HDEL', KEYS[1], 'since')
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return nil
