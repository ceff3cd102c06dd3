--[[
  cas-write.lua — compare-and-set of one paging document (doc-store.ts).

  KEYS[1]  the document: hash {v = version, j = JSON}
  KEYS[2]  the namespace index: set of ids

  ARGV[1]  expected version (0: the document must be absent)
  ARGV[2]  the new JSON, or '' to delete
  ARGV[3]  TTL in ms (0: none)
  ARGV[4]  the document's id (member of the index)

  Returns the new version (delete: 1), or 0 when the stored version is not the
  expected one (another writer won; nothing changed).
]]
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[4])
  return 1
end
local v = cur + 1
redis.call('HSET', KEYS[1], 'v', v, 'j', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
redis.call('SADD', KEYS[2], ARGV[4])
return v
