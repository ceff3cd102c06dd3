--[[
  append.lua — idempotent ledger append: a record whose key was appended within
  the TTL is not appended again (a redelivered batch, a write retried after a
  timeout that had landed). One decision attempt, one stream entry.

  KEYS[1]      the ledger stream (<prefix>ledger)
  KEYS[1 + i]  the seen-key of record i (<prefix>ledger:seen:<record key>)
  ARGV[1]      approximate MAXLEN of the stream
  ARGV[2]      TTL of a seen-key in ms
  ARGV[2 + i]  record i as JSON (i = 1..n)

  Returns the number of records appended.
]]
local maxLen = ARGV[1]
local ttl = tonumber(ARGV[2])
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'PX', ttl, 'NX') then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxLen, '*', 'rec', ARGV[i + 1])
    added = added + 1
  end
end
return added
