-- dedupe-claim: claim a batch of event ids in one atomic call.
-- KEYS[i]  dedupe key of event i (nw:dedupe:<id>)
-- ARGV[1]  claim TTL in ms (an unconfirmed claim lapses, so a dead replica's claims free themselves)
-- Returns  an array with, per key: 1 = claimed now, 0 = already done (duplicate),
--          2 = claimed by someone else and not confirmed yet (pending)
local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], 'pending', 'PX', ttl, 'NX') then
    out[i] = 1
  elseif redis.call('GET', KEYS[i]) == 'pending' then
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
