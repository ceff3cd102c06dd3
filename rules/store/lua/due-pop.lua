-- due-pop: remove and return the members of a sorted set whose score is <= before
-- (pending sustained deadlines, scopes silent since before).
-- KEYS[1]  sorted set
-- ARGV[1]  before (ms)
-- Returns: array of members (unsorted; the adapter sorts)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
