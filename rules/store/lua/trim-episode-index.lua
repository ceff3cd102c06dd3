-- trim-episode-index: remove members of a rule's active-episode index whose
-- episode is no longer active. The episode hash expires by TTL (or ends
-- without a ZREM when it was auto-expired), but the index is a sorted set
-- refreshed by every new episode, so such members would stay forever and be
-- re-examined on every engine tick. Atomic per chunk: an episode that fires
-- again between the caller's read and this script keeps its member.
-- KEYS[1]      sorted set of active episodes of one rule (member = scope)
-- KEYS[2..n]   the episode hash of each member, in ARGV order
-- ARGV[1..n-1] the members (scope keys)
-- Returns      the number of members removed.
local removed = 0
for i = 1, #ARGV do
  if redis.call('HGET', KEYS[i + 1], 'active') ~= '1' then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
