--[[
  settle-denial.lua — remembers a decision that was not let through (a guard
  denial, or a page the incident layer suppressed), so the same decision again
  is `idempotency`. Mirrors recordDenialState in
  remediations/guard/memory-guard.ts. Never overwrites a record another replica
  holds (done, or in flight within its lease); an in-flight record whose lease
  lapsed (its replica died between authorize and settle) is replaced only when
  `overLapsed` (a decision the incident layer settled: routed, it will not
  reach authorize to take the lease over).

  KEYS[1] decision  string "in-flight|<leaseEnd>|<reservation>|<holder>" /
                    "done|<until>|<outcome>"
  ARGV[1] JSON {now, outcome ('denied'|'suppressed'), ttlMs, overLapsed}

  Returns 1 when written, 0 when an existing record was kept.
]]
-- p, now, ttl, decisionRecord, readDecisionRecord: prelude.lua

local d = redis.call('GET', KEYS[1])
if d then
  if not p.overLapsed then return 0 end
  if not string.find(d, '|', 1, true) then return 0 end
  -- the lease end is the second field whether or not the record names a holder
  -- (ADR 0026); a lapsed lease is replaced whoever held it: that replica's late
  -- settle is then refused (settle.lua), its renew answers `lost` (renew.lua)
  local state, leaseEnd = readDecisionRecord(d)
  if state ~= 'in-flight' or leaseEnd == nil or leaseEnd > now then return 0 end
end
redis.call('SET', KEYS[1], decisionRecord('done', now + ttl(p.ttlMs), p.outcome), 'PX', ttl(p.ttlMs))
return 1
