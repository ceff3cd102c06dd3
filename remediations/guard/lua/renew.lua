--[[
  renew.lua — extends the in-flight leases one replica holds, in one atomic
  step with authorize.lua's take-over (ADR 0026). Mirrors renewState in
  remediations/guard/memory-guard.ts.

  KEYS[i]  decision        string "in-flight|<leaseEnd>|<reservation>|<holder>" /
                           "done|<suppressedUntil>|<outcome>" (authorize.lua)

  ARGV[1] JSON {now, holder, ttlMs}

  Returns one entry per key: 'held' (the record is in flight under this
  holder, lapsed or not: its lease now ends at now + ttlMs) or 'lost' (taken
  over by another holder, settled, or gone).
]]
-- p, now, fmt, decisionRecord, readDecisionRecord, splitHolder: prelude.lua
local ttlMs = tonumber(p.ttlMs)
local out = {}
for i, key in ipairs(KEYS) do
  local answer = 'lost'
  local d = redis.call('GET', key)
  if d then
    local state, _, extra = readDecisionRecord(d)
    local _, holder = splitHolder(extra)
    if state == 'in-flight' and holder ~= '' and holder == p.holder then
      -- keep the key at least as long as it was kept (a lapsed lease is taken over, not forgotten)
      local pttl = redis.call('PTTL', key)
      redis.call('SET', key, decisionRecord('in-flight', now + ttlMs, extra), 'PX', math.max(pttl, math.floor(ttlMs)))
      answer = 'held'
    end
  end
  out[i] = answer
end
return out
