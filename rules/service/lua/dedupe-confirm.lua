-- dedupe-confirm: mark a batch of claimed event ids as processed.
-- KEYS[i]  dedupe key of event i
-- ARGV[1]  dedupe window in ms (how long a processed id is remembered)
-- Returns  the number of keys written
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], 'done', 'PX', ttl)
end
return #KEYS
