-- batch: run a whole batch of StateStore ops, in order, as ONE atomic script.
-- Each op sees the effects of the ops before it (the StateStore contract), and
-- no other client sees a half-applied batch (two engine replicas never both
-- fire an episode). The op semantics are those of the memory adapter
-- (rules/store/memory-store.ts); the shared contract suite checks both.
--
-- KEYS     every key the batch touches, each once (the adapter dedupes); ops
--          name keys by their 1-based position in KEYS. Single shard: the
--          engine's Redis is one primary (no Cluster slot routing), see
--          redis-store.ts. Types: window/distinct/index keys are sorted sets,
--          sustained/episode/sequence keys hashes, counter keys lists of
--          packed records (below), max keys strings.
-- ARGV[1]  the ops as one JSON array, flattened: opcode, then its fields
--          (k = KEYS position of the key, i = of the index sorted set).
--          Values that go to Redis verbatim (times, bounds, TTLs) come as
--          decimal STRINGS, so no Lua number is ever formatted ('%.17g' via
--          printf was a tenth of Redis' CPU); values Lua computes with are
--          numbers. ( = exclusive bound "(<n>", as ZCOUNT takes it.
--           1 window.add        k member ts from (from ttlMs        from = ts - windowMs
--           2 window.count      k (from now                         (also distinct.count)
--           3 distinct.add      k member ts from (from ttlMs       count: distinctBest
--           4 distinct.members  k (from now windowMs            members: distinctBest's window
--           5 counter.add       k value idHash ts from ttlMs refreshMs   (numbers but ttlMs)
--                               idHash: 53-bit hash of the event id (dedupe)
--           6 counter.increase  k from now                          (numbers)
--           7 sustained.observe k i member ts holds(1/0) ttlMs refreshMs
--           8 sustained.get     k
--           9 due.pop           i before
--          10 seen.touch        i member ts ttlMs
--          11 episode.fire      k i member now cooldownMs autoExpireMs ttlMs by   (numbers; by: a string)
--          12 episode.touch     k i member now                      (number)
--          13 episode.clear     k i member now quietBefore          (numbers; null: unconditional)
--          14 episode.quiet     i before
--          15 episode.get       k
--          16 sequence.step     k step steps ts windowMs ttlMs      (numbers)
--          17 max.set           k value ttlMs                       (numbers)
--          18 max.get           k
--          19 episode.release   k i member                          (ends the episode and its cooldown)
-- Returns: one reply per op, in op order: a number, as an integer when it is
-- one (exact below 2^53) else as a '%.17g' string (a Lua number reply would be
-- truncated), or a time as the decimal string Redis holds; "none" is nil;
-- member lists are arrays (unsorted; the adapter sorts); sequence.step 1 or 0.
--
-- TTLs: sorted sets get ONE PEXPIRE per key per batch, at the end, with the
-- largest ttlMs any op gave it (the script is atomic: nobody can tell).
-- Counter lists and sustained hashes refresh theirs only when the sample's
-- time enters a new period of refreshMs (or the key is new): a PEXPIRE per op
-- was a tenth of Redis' CPU. refreshMs leaves the key at least the window
-- (counter: (ttl - window) / 2) or three quarters of its TTL (sustained) of
-- wall time after its last sample, so no state a window can still see expires.

local call = redis.call
local fmt = string.format
local floor = math.floor
local tonumber = tonumber
local KEYS = KEYS
local a = cjson.decode(ARGV[1])
-- ARGV[2] (optional): partition-local writes (ADR 0045, ADR 0047), a JSON
-- array of flushes {h, e, g, ep, p, r, set, l}: h/e/g = KEYS positions of the
-- partition's hash, epoch key and op-log list, ep its owner epoch (decimal
-- string), p the partition; a snapshot (r = 1): the hash is replaced by set,
-- a flat [field, value, ...] array, and the op log deleted; an append: l =
-- the ARGV position of one op-log entry, RPUSHed verbatim. Every epoch is
-- checked BEFORE any op runs: a stale one fails the whole call, writing nothing.
local flushes = nil
if ARGV[2] then
  flushes = cjson.decode(ARGV[2])
  for _, f in ipairs(flushes) do
    local cur = redis.call('GET', KEYS[f.e])
    if cur ~= f.ep then return redis.error_reply('NW_STALE_EPOCH ' .. tostring(f.p)) end
  end
end
local null = cjson.null
local out = {}
local ttl = {}

-- a number reply: integers as integers, anything else exact as a string
local function ret(x)
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end
  return fmt('%.17g', x)
end
-- PEXPIRE at the end of the batch (ms: a decimal string)
local function keep(k, ms)
  local cur = ttl[k]
  if cur == nil or (cur ~= ms and tonumber(ms) > tonumber(cur)) then ttl[k] = ms end
end
-- true when ts starts a new refresh period after last (or there was no last)
local function due(ts, last, every)
  return last == nil or every <= 0 or floor(ts / every) ~= floor(last / every)
end
local SMALL = { '1', '2', '3', '4', '5', '6', '7', '8' }

-- Counter series: a LIST of fixed-size little-endian records
-- (ts, value, prefix, idHash), sorted by ts, equal ts in arrival order.
-- prefix = prefix of the previous record + (value - previous value), or
-- + value on a reset (value < previous); 0 for the first record kept. The
-- increase over records a..b is prefix[b] - prefix[a]: an in-order sample
-- costs four O(1) list commands on tiny strings instead of reading and
-- parsing the whole window. The memory adapter keeps the same prefixes, so
-- both adapters return bit-identical results (fractions included).
local spack, sunpack = struct.pack, struct.unpack
local function step(prev, v)
  if v >= prev then return v - prev end
  return v
end
local function recAt(key, i)
  local r = call('LINDEX', key, tostring(i))
  if not r then return nil end
  return sunpack('<ddd', r)
end
-- 0-based index of the first record with ts > t (ts >= t when strict), in [lo, hi)
local function search(key, lo, hi, t, strict)
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    local mts = recAt(key, mid)
    if (strict and mts < t) or (not strict and mts <= t) then lo = mid + 1 else hi = mid end
  end
  return lo
end
-- increase over the records with ts in [from, to] (read only)
local function counterIncrease(key, from, to)
  local n = call('LLEN', key)
  if n == 0 then return 0 end
  local lts, _, lp = recAt(key, -1)
  local b, pb = n - 1, lp
  if lts > to then
    b = search(key, 0, n, to, false) - 1
    if b < 0 then return 0 end
    _, _, pb = recAt(key, b)
  end
  local fts, _, fp = recAt(key, 0)
  local first, pa = 0, fp
  if fts < from then
    first = search(key, 0, n, from, true)
    if first > b then return 0 end
    _, _, pa = recAt(key, first)
  end
  if b <= first then return 0 end
  return pb - pa
end
-- rewrites the whole series after a late or same-millisecond sample (rare);
-- returns the prefix of the newest record with ts <= the sample's
local function counterInsert(key, ts, v, h)
  local all = call('LRANGE', key, '0', '-1')
  local n = #all
  local T, V, P, H = {}, {}, {}, {}
  for j = 1, n do T[j], V[j], P[j], H[j] = sunpack('<dddd', all[j]) end
  local at = n + 1
  while at > 1 and T[at - 1] > ts do at = at - 1 end
  local j = at - 1
  while j >= 1 and T[j] == ts do
    if H[j] == h then return P[at - 1] end -- a duplicate: nothing changes
    j = j - 1
  end
  table.insert(T, at, ts)
  table.insert(V, at, v)
  table.insert(H, at, h)
  table.insert(P, at, at > 1 and P[at - 1] + step(V[at - 1], v) or 0)
  for i = at + 1, n + 1 do P[i] = P[i - 1] + step(V[i - 1], V[i]) end
  call('DEL', key)
  local recs = {}
  for i = 1, n + 1 do
    recs[#recs + 1] = spack('<dddd', T[i], V[i], P[i], H[i])
    if #recs == 1000 or i == n + 1 then
      call('RPUSH', key, unpack(recs))
      recs = {}
    end
  end
  -- inserted after every record of its ms
  return P[at]
end
local function counterAdd(k, ts, v, h, from, ttlMs, every)
  local key = KEYS[k]
  local last = call('LINDEX', key, '-1')
  local pb
  if not last then
    pb = 0
    call('RPUSH', key, spack('<dddd', ts, v, 0, h))
    keep(k, ttlMs)
  else
    local lts, lv, lp = sunpack('<ddd', last)
    if ts > lts then
      pb = lp + step(lv, v)
      call('RPUSH', key, spack('<dddd', ts, v, pb, h))
      if due(ts, lts, every) then keep(k, ttlMs) end
    else
      pb = counterInsert(key, ts, v, h)
      keep(k, ttlMs)
    end
  end
  -- drop what no window ending at or after ts can see again (ts >= from stays)
  while true do
    local head = call('LRANGE', key, '0', '1')
    local drop = 0
    local pa
    for j = 1, #head do
      local t2, _, p2 = sunpack('<ddd', head[j])
      if t2 >= from then pa = p2 break end
      drop = drop + 1
    end
    if drop > 0 then call('LTRIM', key, SMALL[drop], '-1') end
    if pa then return pb - pa end
  end
end

-- distinctNodes across replicas: each replica adds the nodes of its own
-- partitions to a group's set, so an event can be evaluated AFTER a newer
-- member of its group was added (one replica lags). Counting only (ts - win,
-- ts] then misses the newer members, and if the newest member was counted
-- before this one arrived, no evaluation ever sees them all. Of the windows
-- of length win that hold ts — ending at ts, or at a newer member before
-- ts + win — the one with the most members counts (the earliest on a tie);
-- in order (nothing newer) that is (ts - win, ts], as always. At most
-- MAX_LATER newer members are tried. Returns the count and the window's end.
local MAX_LATER = '1024'
local function distinctBest(key, tsS, fromX, win)
  local best, bestS = call('ZCOUNT', key, fromX, tsS), tsS
  local ts = tonumber(tsS)
  local later = call('ZRANGEBYSCORE', key, '(' .. tsS, '(' .. fmt('%.17g', ts + win), 'WITHSCORES', 'LIMIT', '0', MAX_LATER)
  for i = 2, #later, 2 do
    local eS = later[i]
    local c = call('ZCOUNT', key, '(' .. fmt('%.17g', tonumber(eS) - win), eS)
    if c > best then best, bestS = c, eS end
  end
  return best, bestS
end

local p = 1
local n = 0
local len = #a
while p <= len do
  local op = a[p]
  n = n + 1
  local r = false
  if op == 1 then -- window.add
    local k = a[p + 1]
    local key, ts = KEYS[k], a[p + 3]
    call('ZADD', key, 'NX', ts, a[p + 2])
    call('ZREMRANGEBYSCORE', key, '-inf', a[p + 4])
    keep(k, a[p + 6])
    r = call('ZCOUNT', key, a[p + 5], ts)
    p = p + 7
  elseif op == 2 then -- window.count / distinct.count
    r = call('ZCOUNT', KEYS[a[p + 1]], a[p + 2], a[p + 3])
    p = p + 4
  elseif op == 3 then -- distinct.add
    local k = a[p + 1]
    local key, ts = KEYS[k], a[p + 3]
    call('ZADD', key, 'GT', ts, a[p + 2])
    call('ZREMRANGEBYSCORE', key, '-inf', a[p + 4])
    keep(k, a[p + 6])
    r = distinctBest(key, ts, a[p + 5], tonumber(ts) - tonumber(a[p + 4]))
    p = p + 7
  elseif op == 4 then -- distinct.members
    local key, nowS, win = KEYS[a[p + 1]], a[p + 3], a[p + 4]
    local _, endS = distinctBest(key, nowS, a[p + 2], win)
    if endS == nowS then
      r = call('ZRANGEBYSCORE', key, a[p + 2], nowS)
    else
      r = call('ZRANGEBYSCORE', key, '(' .. fmt('%.17g', tonumber(endS) - win), endS)
    end
    p = p + 5
  elseif op == 5 then -- counter.add
    r = ret(counterAdd(a[p + 1], a[p + 4], a[p + 2], a[p + 3], a[p + 5], a[p + 6], a[p + 7]))
    p = p + 8
  elseif op == 6 then -- counter.increase
    r = ret(counterIncrease(KEYS[a[p + 1]], a[p + 2], a[p + 3]))
    p = p + 4
  elseif op == 7 then -- sustained.observe
    local k = a[p + 1]
    local key, tsS = KEYS[k], a[p + 4]
    local ts = tonumber(tsS)
    local st = call('HMGET', key, 'since', 'last')
    local since = st[1]
    local last = st[2] and tonumber(st[2]) or nil
    if last ~= nil and ts < last then
      -- stale (out of order): ignored
      r = since
    else
      if due(ts, last, a[p + 7]) then keep(k, a[p + 6]) end
      if a[p + 5] == 1 then
        if not since then
          since = tsS
          call('HSET', key, 'last', tsS, 'since', tsS)
          call('ZADD', KEYS[a[p + 2]], tsS, a[p + 3])
          keep(a[p + 2], a[p + 6])
        else
          call('HSET', key, 'last', tsS)
        end
        r = since
      elseif since then
        call('HSET', key, 'last', tsS)
        call('HDEL', key, 'since')
        call('ZREM', KEYS[a[p + 2]], a[p + 3])
      else
        call('HSET', key, 'last', tsS)
      end
    end
    p = p + 8
  elseif op == 8 then -- sustained.get
    r = call('HGET', KEYS[a[p + 1]], 'since')
    p = p + 2
  elseif op == 9 then -- due.pop (ZREMRANGEBYSCORE removes exactly the members read: no unpack limit)
    local idx, before = KEYS[a[p + 1]], a[p + 2]
    r = call('ZRANGEBYSCORE', idx, '-inf', before)
    if #r > 0 then call('ZREMRANGEBYSCORE', idx, '-inf', before) end
    p = p + 3
  elseif op == 10 then -- seen.touch
    local k, member = a[p + 1], a[p + 2]
    local idx = KEYS[k]
    r = call('ZSCORE', idx, member)
    call('ZADD', idx, 'GT', a[p + 3], member)
    keep(k, a[p + 4])
    p = p + 5
  elseif op == 11 then -- episode.fire: atomic, so two replicas never both fire
    local key, now, autoExpire = KEYS[a[p + 1]], a[p + 4], a[p + 6]
    local e = call('HMGET', key, 'active', 'firedAt', 'cooldownUntil', 'firedBy')
    local blocked = false
    -- re-fired by what fired it at its start (a redelivery): the same episode, hence the same decision ids
    if e[1] == '1' and tonumber(e[2]) == now and e[4] == a[p + 8] then r = ret(now); blocked = true
    elseif e[1] == '1' and not (autoExpire >= 0 and now >= tonumber(e[2]) + autoExpire) then blocked = true end
    if not blocked and e[3] and now < tonumber(e[3]) then blocked = true end
    if not blocked then
      call('HSET', key, 'active', '1', 'firedAt', now, 'lastMatch', now, 'cooldownUntil', now + a[p + 5], 'firedBy', a[p + 8])
      keep(a[p + 1], a[p + 7])
      if autoExpire < 0 then
        call('ZADD', KEYS[a[p + 2]], now, a[p + 3])
        keep(a[p + 2], a[p + 7])
      end
      r = ret(now)
    end
    p = p + 9
  elseif op == 12 then -- episode.touch
    local key, now = KEYS[a[p + 1]], a[p + 4]
    local e = call('HMGET', key, 'active', 'lastMatch')
    if e[1] == '1' and now > tonumber(e[2]) then
      call('HSET', key, 'lastMatch', now)
      local idx, member = KEYS[a[p + 2]], a[p + 3]
      if call('ZSCORE', idx, member) then call('ZADD', idx, now, member) end
    end
    p = p + 5
  elseif op == 13 then -- episode.clear
    -- most clears find no active episode: read one field first
    local key, qb = KEYS[a[p + 1]], a[p + 5]
    if call('HGET', key, 'active') == '1' then
      local e = call('HMGET', key, 'firedAt', 'lastMatch')
      if qb == null or tonumber(e[2]) <= qb then
        call('HSET', key, 'active', '0')
        call('ZREM', KEYS[a[p + 2]], a[p + 3])
        r = e[1]
      end
    end
    p = p + 6
  elseif op == 14 then -- episode.quiet
    r = call('ZRANGEBYSCORE', KEYS[a[p + 1]], '-inf', a[p + 2])
    p = p + 3
  elseif op == 15 then -- episode.get
    local e = call('HMGET', KEYS[a[p + 1]], 'active', 'firedAt')
    if e[1] == '1' then r = e[2] end
    p = p + 2
  elseif op == 16 then -- sequence.step
    local key, step, steps, ts = KEYS[a[p + 1]], a[p + 2], a[p + 3], a[p + 4]
    r = 0
    if step == 0 then
      local cur = call('HGET', key, '0')
      if not cur or ts > tonumber(cur) then call('HSET', key, '0', ts) end
      keep(a[p + 1], a[p + 6])
    else
      local start = call('HGET', key, tostring(step - 1))
      if start then
        start = tonumber(start)
        if ts >= start and ts - start <= a[p + 5] then
          if step == steps - 1 then
            call('DEL', key)
            r = 1
          else
            local cur = call('HGET', key, tostring(step))
            if not cur or start > tonumber(cur) then call('HSET', key, tostring(step), start) end
            keep(a[p + 1], a[p + 6])
          end
        end
      end
    end
    p = p + 7
  elseif op == 17 then -- max.set
    local key, v = KEYS[a[p + 1]], a[p + 2]
    local cur = call('GET', key)
    if cur and tonumber(cur) >= v then v = tonumber(cur) else call('SET', key, fmt('%.17g', v)) end
    keep(a[p + 1], a[p + 3])
    r = ret(v)
    p = p + 4
  elseif op == 18 then -- max.get
    local cur = call('GET', KEYS[a[p + 1]])
    r = cur
    p = p + 2
  elseif op == 19 then -- episode.release: active or cooling down, the next match fires
    local key = KEYS[a[p + 1]]
    r = call('HGET', key, 'firedAt')
    if r then call('DEL', key) end
    call('ZREM', KEYS[a[p + 2]], a[p + 3])
    p = p + 4
  else
    return redis.error_reply('batch: unknown opcode ' .. tostring(op) .. ' at ' .. p)
  end
  out[n] = r
end

for k, ms in pairs(ttl) do call('PEXPIRE', KEYS[k], ms) end
if flushes then
  for _, f in ipairs(flushes) do
    if f.r == 1 then
      local set = f.set
      call('UNLINK', KEYS[f.h], KEYS[f.g])
      for i = 1, #set, 400 do call('HSET', KEYS[f.h], unpack(set, i, math.min(i + 399, #set))) end
    end
    if f.l then call('RPUSH', KEYS[f.g], ARGV[f.l]) end
  end
end
return out
