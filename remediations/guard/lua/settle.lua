--[[
  settle.lua — after the executor ran: confirm or release what authorize.lua
  reserved, and feed the circuit breaker. Mirrors settleState in
  remediations/guard/memory-guard.ts. Releases only what this reservation
  holds (a newer reservation of the same target is left alone).

  KEYS[1] decision         string "in-flight|<leaseEnd>|<reservation>|<holder>" /
                           "done|<suppressedUntil>|<outcome>"
  KEYS[2] breaker          hash {openUntil, trial, trialExpires}
  KEYS[3] breakerFailures  zset member=reservation score=time
  KEYS[4] cooldown         string "<until>|<reservation>"
  KEYS[5] reservations     hash node -> JSON {id, scopes[], exp}
  KEYS[6] rollback         hash {at, from, to, res}
  KEYS[7] rollbackAway     zset member=revision score=time
  KEYS[8] gpuTaints        hash node -> JSON {g, s, d {gpu -> {id, exp}}} (authorize.lua)

  ARGV[1] JSON SettlePlan (remediations/guard/policy.ts): now, decisionId,
          action, target, reservation, holder, ok, outcome, idempotencyTtlMs,
          breaker{failures,windowMs,openForMs}, holdMs, cordonNode|null,
          uncordonNode|null, rollback{workload,to}|null,
          taintGpu{node,gpu}|null, untaintGpu{node,gpu}|null

  Returns 'ok', or 'refused' (nothing changed) when the decision is held by
  another holder (taken over after a lapsed lease) or already done: only the
  holder settles (ADR 0026). A record without a holder (older versions) or
  none at all does not refuse.
]]
-- p, now, fmt, ttl, present, decisionRecord, readDecisionRecord, splitHolder: prelude.lua

do
  local d = redis.call('GET', KEYS[1])
  if d then
    local state, _, extra = readDecisionRecord(d)
    if state ~= 'in-flight' then return 'refused' end
    local _, holder = splitHolder(extra)
    if holder ~= '' and holder ~= p.holder then return 'refused' end
  end
end

local isTrial = redis.call('HGET', KEYS[2], 'trial') == p.decisionId

-- the GPU taint record of node/gpu: decoded hash entry, or nil
local function gpuRecord(ref)
  local v = redis.call('HGET', KEYS[8], ref.node)
  if not v then return nil end
  return cjson.decode(v)
end
local function saveGpuRecord(ref, r)
  if next(r.d) == nil then redis.call('HDEL', KEYS[8], ref.node) else redis.call('HSET', KEYS[8], ref.node, cjson.encode(r)) end
end

if p.ok then
  redis.call('SET', KEYS[1], decisionRecord('done', now + p.idempotencyTtlMs, p.outcome), 'PX', ttl(p.idempotencyTtlMs))
  if isTrial then redis.call('DEL', KEYS[2], KEYS[3]) end -- the trial succeeded: close
  if present(p.cordonNode) then
    local v = redis.call('HGET', KEYS[5], p.cordonNode)
    if v then
      local r = cjson.decode(v)
      if r.id == p.reservation then
        -- keep counting the node until the view shows it cordoned
        r.exp = now + p.holdMs
        redis.call('HSET', KEYS[5], p.cordonNode, cjson.encode(r))
        redis.call('PEXPIRE', KEYS[5], ttl(p.holdMs))
      end
    end
  end
  if present(p.uncordonNode) then redis.call('HDEL', KEYS[5], p.uncordonNode) end
  if present(p.taintGpu) then
    local r = gpuRecord(p.taintGpu)
    local dv = r and r.d[p.taintGpu.gpu]
    if dv and dv.id == p.reservation then
      -- executed: counted until the untaint; dry-run: nothing changed, held like a cordon reservation
      if p.outcome == 'executed' then dv.exp = -1 else dv.exp = now + p.holdMs end
      saveGpuRecord(p.taintGpu, r)
    end
  end
  if present(p.untaintGpu) then
    local r = gpuRecord(p.untaintGpu)
    if r then r.d[p.untaintGpu.gpu] = nil; saveGpuRecord(p.untaintGpu, r) end
  end
  if present(p.rollback) and present(p.rollback.to) then
    if redis.call('HGET', KEYS[6], 'res') == p.reservation then
      redis.call('HSET', KEYS[6], 'to', fmt(p.rollback.to))
    end
  end
  return 'ok'
end

-- failed: release this decision's holds so a redelivery may try again
redis.call('DEL', KEYS[1])
local c = redis.call('GET', KEYS[4])
if c and string.sub(c, string.find(c, '|', 1, true) + 1) == p.reservation then redis.call('DEL', KEYS[4]) end
if present(p.cordonNode) then
  local v = redis.call('HGET', KEYS[5], p.cordonNode)
  if v and cjson.decode(v).id == p.reservation then redis.call('HDEL', KEYS[5], p.cordonNode) end
end
if present(p.taintGpu) then
  local r = gpuRecord(p.taintGpu)
  local dv = r and r.d[p.taintGpu.gpu]
  if dv and dv.id == p.reservation then r.d[p.taintGpu.gpu] = nil; saveGpuRecord(p.taintGpu, r) end
end
if present(p.rollback) and redis.call('HGET', KEYS[6], 'res') == p.reservation then
  local from = redis.call('HGET', KEYS[6], 'from')
  redis.call('DEL', KEYS[6])
  if from and from ~= '' then redis.call('ZREM', KEYS[7], from) end
end

-- feed the breaker
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', fmt(now - p.breaker.windowMs))
redis.call('ZADD', KEYS[3], fmt(now), p.reservation)
redis.call('PEXPIRE', KEYS[3], ttl(p.breaker.windowMs))
if isTrial then
  redis.call('HSET', KEYS[2], 'openUntil', fmt(now + p.breaker.openForMs)) -- the trial failed: open again
  redis.call('HDEL', KEYS[2], 'trial', 'trialExpires')
elseif not redis.call('HGET', KEYS[2], 'openUntil') and redis.call('ZCARD', KEYS[3]) >= p.breaker.failures then
  redis.call('HSET', KEYS[2], 'openUntil', fmt(now + p.breaker.openForMs))
end
return 'ok'
