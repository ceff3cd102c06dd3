-- release-lock: delete a job's running lease only if this run still holds it
-- (after a timeout the lease may have expired and been taken by another
-- replica; deleting it then would let a third run overlap).
-- KEYS[1]  the lease key (string: the holder's token)
-- ARGV[1]  the holder's token
-- Returns  1 when released, 0 when the lease is held by someone else or gone.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
