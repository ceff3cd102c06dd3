-- dedupe-confirm: mark claims done for the dedupe window (ADR 0048).
-- KEYS[1..n]  batch keys of claims confirmed whole (n = ARGV[2])
-- KEYS[n+1]   (only when ids follow) batch key of a fresh token, set done
-- KEYS[n+2..] id keys confirmed one by one (part of a claim, or never claimed
--             here): re-pointed to the fresh token ARGV[3]
-- ARGV[1]     dedupe window in ms
-- Returns     the number of keys written
local window, n, fresh = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local call = redis.call
for i = 1, n do
  call('SET', KEYS[i], 'done', 'PX', window)
end
if #KEYS > n then
  call('SET', KEYS[n + 1], 'done', 'PX', window)
  for i = n + 2, #KEYS do
    call('SET', KEYS[i], fresh, 'PX', window)
  end
end
return #KEYS
