--[[
  authorize.lua — every guard check of one decision and, only if all pass,
  every reservation, in one atomic step (so N engine replicas can never
  together exceed a budget). Mirrors CHECKS in remediations/guard/memory-guard.ts;
  the same order as the brief: paused → idempotency → circuit breaker →
  cooldown → rate limit → rollback flapping/window → maxUnavailable.
  Times come from ARGV (the caller's clock, virtual in replay), never TIME;
  key TTLs only garbage-collect.

  KEYS[1] paused           hash {reason, by, at}
  KEYS[2] decision         string "in-flight|<leaseEnd>|<reservation>|<holder>" /
                           "done|<suppressedUntil>|<outcome>"
                           (holder: the replica's token, ADR 0026; absent
                           in records of older versions)
  KEYS[3] breaker          hash {openUntil, trial, trialExpires}
  KEYS[4] breakerFailures  zset member=reservation score=time
  KEYS[5] cooldown         string "<until>|<reservation>"
  KEYS[6] rate             zset member=reservation score=time
  KEYS[7] rollback         hash {at, from, to, res}
  KEYS[8] rollbackAway     zset member=revision score=time
  KEYS[9] reservations     hash node -> JSON {id, scopes[], exp}
  KEYS[10] gpuTaints       hash node -> JSON {g (GPUs|null), s (scopes[]),
                           d {gpu -> {id, exp}}}; exp -1 = held until untaint

  ARGV[1] JSON AuthorizePlan (remediations/guard/policy.ts): now, decisionId,
          action, target, reservation, holder, pausable, recovery, idempotencyTtlMs, inFlightTtlMs,
          breaker{failures,windowMs,openForMs,trialTtlMs}, cooldownMs,
          rate{limit,windowMs}|null, rollback{workload,windowMs,from,to}|null,
          budget{node,holdMs,gpus,viewTainted[],gpu{id,cap}|null,unplaced{rule,reason,count}|null,
                 scopes[{scope,limit,total,unavailable[],partial[{node,gpus,tainted[]}]}]}|null
          (GPU arithmetic: remediations/guard/gpu-budget.ts, mirrored below)

  Returns {'allow', reservation}  (the reservation written: a taken-over one
          when a lapsed in-flight record of this decision was found)
       or {'deny', guard, outcome ('denied'|'suppressed'), a, b, c}
          with guard-specific values a, b, c (see toVerdict in policy.ts);
          guard 'inFlight' (a = lease end) is not an outcome: retry later.
]]
-- p, now, fmt, ttl, present, decisionRecord, readDecisionRecord, splitHolder: prelude.lua
local function deny(guard, a, b, c, outcome)
  return { 'deny', guard, outcome or 'denied', tostring(a or ''), tostring(b or ''), tostring(c or '') }
end

-- One decision's checks and reservations: `p` its plan, `KEYS` its 10 keys (above).
local function authorizeOne(p, KEYS)
  local now = tonumber(p.now)
  -- 1. global pause (kill switch); pages and resolves are not pausable
  if p.pausable then
    local pz = redis.call('HMGET', KEYS[1], 'reason', 'by', 'at')
    if pz[1] then return deny('paused', pz[1], pz[2], pz[3]) end
  end

  -- 2. idempotency: the same decision id never acts twice. done → suppressed;
  -- in-flight within its lease → retry later; a lapsed lease (its replica died
  -- between authorize and settle) is taken over with the same reservation, so
  -- the holds it left (cooldown, rate entry, rollback, budget) do not deny it.
  local res = p.reservation
  local own = false
  local d = redis.call('GET', KEYS[2])
  if d then
    local state, untilMs, extra = readDecisionRecord(d)
    if state == 'done' or state == 'executed' then -- 'executed|<until>': written by older versions
      if extra == '' then extra = state end
      if untilMs > now then return deny('idempotency', extra, '', '', 'suppressed') end
    else
      if untilMs > now then return deny('inFlight', fmt(untilMs), '', '', 'suppressed') end
      -- the reservation, without the holder that follows it; the take-over writes this holder
      extra = splitHolder(extra)
      if extra ~= '' then res = extra; own = true end
    end
  end

  -- 3. circuit breaker: open until openUntil, then half-open with one trial lease
  local trial = false
  local openUntil = false
  if not p.recovery then openUntil = redis.call('HGET', KEYS[3], 'openUntil') end -- returning capacity is never blocked by the breaker
  if openUntil then
    openUntil = tonumber(openUntil)
    if now < openUntil then return deny('circuitOpen', 'open', fmt(openUntil)) end
    local t = redis.call('HMGET', KEYS[3], 'trial', 'trialExpires')
    if t[1] and t[1] ~= p.decisionId and tonumber(t[2]) > now then return deny('circuitOpen', 'half-open', fmt(openUntil)) end
    trial = true
  end

  -- 4. cooldown per action and target
  if tonumber(p.cooldownMs) > 0 then
    local c = redis.call('GET', KEYS[5])
    if c then
      local sep = string.find(c, '|', 1, true)
      local untilMs = tonumber(string.sub(c, 1, sep - 1))
      local mine = own and string.sub(c, sep + 1) == res
      if untilMs > now and not mine then return deny('cooldown', fmt(untilMs), '', '', 'suppressed') end
    end
  end

  -- 5. sliding-window rate limit per action kind
  if present(p.rate) then
    redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', fmt(now - p.rate.windowMs))
    local used = redis.call('ZCARD', KEYS[6])
    local counted = own and redis.call('ZSCORE', KEYS[6], res)
    if used >= p.rate.limit and not counted then return deny('rateLimit', used, p.rate.limit) end
  end

  -- 6. rollback: one per workload per window, never back to a revision rolled away from
  if present(p.rollback) and not (own and redis.call('HGET', KEYS[7], 'res') == res) then
    local since = now - p.rollback.windowMs
    -- the more specific reason first: going back to a revision just left is a flap
    if present(p.rollback.to) then
      local awayAt = redis.call('ZSCORE', KEYS[8], fmt(p.rollback.to))
      if awayAt and tonumber(awayAt) > since then return deny('rollbackFlapping', fmt(p.rollback.to), fmt(awayAt)) end
    end
    local lastAt = redis.call('HGET', KEYS[7], 'at')
    if lastAt and tonumber(lastAt) > since then return deny('rollbackWindow', fmt(lastAt)) end
  end

  -- 7. maxUnavailable: (unavailable in the view ∪ live cordon reservations) count
  -- one node each; schedulable nodes with tainted GPUs (view ∪ gpuTaints) count
  -- tainted/gpus of a node (1 when gpus is unknown); the decision's cost keeps the
  -- total ≤ limit, per scope. A taint is also capped per node.
  local EPS = 1e-9
  local function weight(gpus, tainted)
    if tainted <= 0 then return 0 end
    if not present(gpus) or tonumber(gpus) <= 0 then return 1 end
    return math.min(1, tainted / tonumber(gpus))
  end
  local function contains(list, x)
    for _, v in ipairs(list) do if v == x then return true end end
    return false
  end
  local function round2(x) return math.floor(x * 100 + 0.5) / 100 end
  local targetReserved = false
  local gpuRec = nil
  local isTaint = false
  if present(p.budget) then
    local node = p.budget.node
    isTaint = present(p.budget.gpu)
    local all = redis.call('HGETALL', KEYS[9])
    local live = {}
    for i = 1, #all, 2 do
      local r = cjson.decode(all[i + 1])
      if tonumber(r.exp) <= now then
        redis.call('HDEL', KEYS[9], all[i])
      else
        live[all[i]] = r.scopes
        if all[i] == node then targetReserved = true end
      end
    end
    -- live GPU taint records, expired devices dropped
    local recs = {}
    local gall = redis.call('HGETALL', KEYS[10])
    for i = 1, #gall, 2 do
      local r = cjson.decode(gall[i + 1])
      local devs = {}
      local n, dropped = 0, false
      for gpu, dv in pairs(r.d) do
        if tonumber(dv.exp) == -1 or tonumber(dv.exp) > now then devs[gpu] = dv; n = n + 1 else dropped = true end
      end
      if n == 0 then
        redis.call('HDEL', KEYS[10], gall[i])
      else
        r.d = devs
        recs[gall[i]] = r
        if dropped then redis.call('HSET', KEYS[10], gall[i], cjson.encode(r)) end
      end
    end
    gpuRec = recs[node]
    local function taintedSet(n, view)
      local set, c = {}, 0
      for _, g in ipairs(view) do if not set[g] then set[g] = true; c = c + 1 end end
      local r = recs[n]
      if r then for g, _ in pairs(r.d) do if not set[g] then set[g] = true; c = c + 1 end end end
      return set, c
    end
    if not targetReserved then
      -- someone else's DeviceTaintRule the view cannot place: the budget is unknown, take nothing more out
      if present(p.budget.unplaced) then
        return deny('unplacedDeviceTaint', p.budget.unplaced.rule, p.budget.unplaced.reason, p.budget.unplaced.count)
      end
      local tset, tcount = taintedSet(node, p.budget.viewTainted)
      local already = isTaint and tset[p.budget.gpu.id] == true
      if isTaint and not already and tcount + 1 > tonumber(p.budget.gpu.cap) then
        return deny('maxTaintedGpusPerNode', node, tcount, p.budget.gpu.cap)
      end
      for _, scope in ipairs(p.budget.scopes) do
        local counted = {}
        local n = 0
        for _, u in ipairs(scope.unavailable) do
          if not counted[u] then counted[u] = true; n = n + 1 end
        end
        if not counted[node] then
          for rn, scopes in pairs(live) do
            if not counted[rn] then
              for _, s in ipairs(scopes) do
                if s == scope.scope then counted[rn] = true; n = n + 1; break end
              end
            end
          end
          local used = n
          local seen = {}
          for _, pn in ipairs(scope.partial) do
            if not counted[pn.node] and not seen[pn.node] and pn.node ~= node then
              seen[pn.node] = true
              local _, c = taintedSet(pn.node, pn.tainted)
              used = used + weight(pn.gpus, c)
            end
          end
          for rn, r in pairs(recs) do
            if not counted[rn] and not seen[rn] and rn ~= node and contains(r.s, scope.scope) then
              seen[rn] = true
              local _, c = taintedSet(rn, {})
              used = used + weight(r.g, c)
            end
          end
          local cur = weight(p.budget.gpus, tcount)
          used = used + cur
          local cost = 1 - cur
          if isTaint then
            cost = 0
            if not already then cost = weight(p.budget.gpus, tcount + 1) - cur end
          end
          if cost > 0 and used + cost > tonumber(scope.limit) + EPS then
            local g = 'maxUnavailablePerGroup'
            if scope.scope == 'fleet' then g = 'maxUnavailable' end
            return deny(g, scope.scope, round2(used), scope.limit)
          end
        end
      end
    end
  end

  -- every check passed: reserve
  -- the key outlives the lease so a lapsed lease can still be taken over
  redis.call('SET', KEYS[2], decisionRecord('in-flight', now + p.inFlightTtlMs, res .. '|' .. p.holder), 'PX', ttl(math.max(p.idempotencyTtlMs, p.inFlightTtlMs)))
  if trial then
    redis.call('HSET', KEYS[3], 'trial', p.decisionId, 'trialExpires', fmt(now + p.breaker.trialTtlMs))
  end
  if tonumber(p.cooldownMs) > 0 then
    redis.call('SET', KEYS[5], fmt(now + p.cooldownMs) .. '|' .. res, 'PX', ttl(p.cooldownMs))
  end
  if present(p.rate) then
    redis.call('ZADD', KEYS[6], fmt(now), res)
    redis.call('PEXPIRE', KEYS[6], ttl(p.rate.windowMs))
  end
  if present(p.rollback) then
    local from = ''
    if present(p.rollback.from) then from = fmt(p.rollback.from) end
    local to = ''
    if present(p.rollback.to) then to = fmt(p.rollback.to) end
    redis.call('DEL', KEYS[7])
    redis.call('HSET', KEYS[7], 'at', fmt(now), 'from', from, 'to', to, 'res', res)
    redis.call('PEXPIRE', KEYS[7], ttl(p.rollback.windowMs))
    if from ~= '' then
      redis.call('ZADD', KEYS[8], fmt(now), from)
      redis.call('PEXPIRE', KEYS[8], ttl(p.rollback.windowMs))
    end
  end
  if isTaint then
    local scopes = {}
    for i, s in ipairs(p.budget.scopes) do scopes[i] = s.scope end
    local r = gpuRec or { d = {} }
    r.g = p.budget.gpus
    r.s = scopes
    local cur = r.d[p.budget.gpu.id]
    -- a GPU already held until its untaint keeps that hold
    if not cur or tonumber(cur.exp) ~= -1 then r.d[p.budget.gpu.id] = { id = res, exp = now + p.budget.holdMs } end
    redis.call('HSET', KEYS[10], p.budget.node, cjson.encode(r))
  elseif present(p.budget) and not targetReserved then
    local scopes = {}
    for i, s in ipairs(p.budget.scopes) do scopes[i] = s.scope end
    redis.call('HSET', KEYS[9], p.budget.node, cjson.encode({ id = res, scopes = scopes, exp = now + p.budget.holdMs }))
    redis.call('PEXPIRE', KEYS[9], ttl(p.budget.holdMs))
  end
  return { 'allow', res }
end

-- A batch (ADR 0044): ARGV[1] is {plans = [plan, …]} and KEYS are the 10 keys of
-- each plan in turn. The plans are authorized one after the other, in order,
-- within this one atomic script: exactly as many separate calls back to back,
-- with nothing of another client in between. Returns one reply per plan.
if present(p.plans) then
  local out = {}
  for i, plan in ipairs(p.plans) do
    local k = {}
    for j = 1, 10 do k[j] = KEYS[(i - 1) * 10 + j] end
    out[i] = authorizeOne(plan, k)
  end
  return out
end
return authorizeOne(p, KEYS)
