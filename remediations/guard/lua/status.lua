--[[
  status.lua — a consistent read of the guard state for the control API and
  metrics (read-only: expired entries are filtered, not deleted).

  KEYS[1]  paused        hash {reason, by, at}
  KEYS[2]  reservations  hash node -> JSON {id, scopes[], exp}
  then per entry i of ARGV[1].actions (three keys each, from index 3):
  KEYS[3i] rate zset, KEYS[3i+1] breaker hash, KEYS[3i+2] breakerFailures zset

  ARGV[1] JSON {now, actions: [{action, rateWindowMs (0 = no limit), breakerWindowMs}]}

  Returns a JSON string: {paused: {reason,by,at}|false,
    reservations: list of {node, scopes}, rate: {action: used},
    breakers: {action: {openUntil: n|false, failures: n}}}
]]
-- p, now, fmt: prelude.lua
local out = { paused = false, reservations = {}, rate = {}, breakers = {} }

local pz = redis.call('HMGET', KEYS[1], 'reason', 'by', 'at')
if pz[1] then out.paused = { reason = pz[1], by = pz[2] or '', at = tonumber(pz[3]) or 0 } end

local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if tonumber(r.exp) > now then table.insert(out.reservations, { all[i], r.scopes }) end
end

for i, a in ipairs(p.actions) do
  local base = 3 * i
  if tonumber(a.rateWindowMs) > 0 then
    out.rate[a.action] = redis.call('ZCOUNT', KEYS[base], '(' .. fmt(now - a.rateWindowMs), '+inf')
  end
  local ou = redis.call('HGET', KEYS[base + 1], 'openUntil')
  out.breakers[a.action] = {
    openUntil = ou and tonumber(ou) or false,
    failures = redis.call('ZCOUNT', KEYS[base + 2], '(' .. fmt(now - a.breakerWindowMs), '+inf'),
  }
end
return cjson.encode(out)
