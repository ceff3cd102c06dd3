-- counter: add a sample of a cumulative counter (mode "add") or only read (mode "query");
-- return the increase over the samples in [ts - windowMs, ts], resets handled.
-- KEYS[1]  sorted set: member = "<event id>|<value>", score = sample time (ms)
-- ARGV[1]  mode: "add" | "query"
-- ARGV[2]  ts / now (ms)
-- ARGV[3]  windowMs
-- ARGV[4]  member (add only)
-- ARGV[5]  ttlMs (add only)
-- Returns: the increase as a string (Lua numbers would be truncated to integers):
--   sum over consecutive samples of (v - prev) when v >= prev, else v (a reset).
local ts = tonumber(ARGV[2])
local from = ts - tonumber(ARGV[3])
if ARGV[1] == 'add' then
  redis.call('ZADD', KEYS[1], 'NX', ts, ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. from)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
local members = redis.call('ZRANGEBYSCORE', KEYS[1], from, ts)
local inc = 0
local prev = nil
for _, m in ipairs(members) do
  local v = tonumber(string.match(m, '|([^|]*)$'))
  if prev ~= nil then
    if v >= prev then inc = inc + (v - prev) else inc = inc + v end
  end
  prev = v
end
return tostring(inc)
