-- sequence-step: an event matched step ARGV[1] of an ordered sequence.
-- KEYS[1]  hash: field <i> = start time of the newest chain that completed step i
-- ARGV[1]  step (0-based)
-- ARGV[2]  steps (count)
-- ARGV[3]  ts (ms)
-- ARGV[4]  windowMs (last step must come within this of the chain's first step)
-- ARGV[5]  ttlMs
-- Returns: 1 when this completes the sequence (the chain is reset), else 0
local step = tonumber(ARGV[1])
local steps = tonumber(ARGV[2])
local ts = tonumber(ARGV[3])
if step == 0 then
  local cur = redis.call('HGET', KEYS[1], '0')
  if not cur or ts > tonumber(cur) then redis.call('HSET', KEYS[1], '0', ts) end
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 0
end
local start = redis.call('HGET', KEYS[1], tostring(step - 1))
if not start then return 0 end
start = tonumber(start)
if ts < start or ts - start > tonumber(ARGV[4]) then return 0 end
if step == steps - 1 then
  redis.call('DEL', KEYS[1])
  return 1
end
local cur = redis.call('HGET', KEYS[1], tostring(step))
if not cur or start > tonumber(cur) then redis.call('HSET', KEYS[1], tostring(step), start) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 0
