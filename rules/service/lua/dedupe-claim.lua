-- dedupe-claim: claim a batch of event ids in one atomic call (ADR 0048).
-- KEYS[1]  this claim's batch key (<prefix>dedupe2:claim:<token>): 'pending' for
--          the claim TTL, 'done' for the dedupe window once confirmed, gone once
--          released or lapsed
-- KEYS[i]  (i >= 2) id key of event i-1 (<prefix>dedupe2:id:<id>): the token of
--          the claim that holds it, for the dedupe window
-- ARGV[1]  claim TTL in ms (an unconfirmed claim lapses, so a dead replica's claims free themselves)
-- ARGV[2]  dedupe window in ms (how long an id key lives)
-- ARGV[3]  this claim's token
-- ARGV[4]  prefix of batch keys: batch key of token t = ARGV[4] .. t
--          (the engine's Redis is one primary, so keys derived here are fine)
-- Returns  per id: 1 = claimed now, 0 = done (duplicate), 2 = held by a claim
--          that is neither confirmed nor lapsed (pending; also an id twice in one call)
local ttl, window, token, bprefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local call = redis.call
call('SET', KEYS[1], 'pending', 'PX', ttl)
-- state of each token met: 'pending' | 'done' | false (released or lapsed)
local state = { [token] = 'pending' }
local out = {}
for i = 2, #KEYS do
  local k = KEYS[i]
  if call('SET', k, token, 'PX', window, 'NX') then
    out[i - 1] = 1
  else
    local t = call('GET', k)
    local s = state[t]
    if s == nil then
      s = call('GET', bprefix .. t) or false
      state[t] = s
    end
    if s == 'done' then
      out[i - 1] = 0
    elseif s == 'pending' then
      out[i - 1] = 2
    else
      call('SET', k, token, 'PX', window)
      out[i - 1] = 1
    end
  end
end
return out
