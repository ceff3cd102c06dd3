-- hdel-if-equal: delete hash fields whose value is still what the caller saw.
-- The caller decides which entries are stale from a read (pure code, unit
-- tested); this script makes the delete atomic, so an entry rewritten between
-- the read and the delete (a new reservation of the same node) is kept.
-- KEYS[1]  the hash (e.g. the guard's cordon reservations: node -> JSON)
-- ARGV     field1, value1, field2, value2, ...
-- Returns  the number of fields deleted.
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
