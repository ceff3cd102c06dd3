-- Removes expired rule toggles from the toggles hash.
-- KEYS[1]  hash of toggles: field = rule id, value = JSON RuleToggle
-- ARGV[1]  now, ms since epoch
-- Returns  the number of fields removed.
-- Atomic so a toggle re-set between our read and the delete is never lost:
-- the expiry is judged on the value present at delete time.
local now = tonumber(ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #all, 2 do
  local ok, t = pcall(cjson.decode, all[i + 1])
  if ok and type(t) == 'table' and type(t.expiresAt) == 'number' and t.expiresAt <= now then
    redis.call('HDEL', KEYS[1], all[i])
    removed = removed + 1
  end
end
return removed
