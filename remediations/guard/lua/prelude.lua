--[[
  prelude.lua — the shared head of the guard scripts (authorize.lua,
  settle.lua, settle-denial.lua, renew.lua, status.lua): the registry (adapters/redis/scripts.ts) runs it
  before each of them, as one script. Every guard script takes one JSON plan
  in ARGV[1] with the caller's clock in `now` (virtual in replay, never TIME).
]]
local p = cjson.decode(ARGV[1])
local now = tonumber(p.now)
local null = cjson.null

local function fmt(n) return string.format('%.0f', tonumber(n)) end
local function ttl(ms) return math.max(1, math.floor(tonumber(ms))) end
local function present(v) return v ~= nil and v ~= null end

-- The decision record (the idempotency key of one decision id):
-- "in-flight|<leaseEnd>|<reservation>|<holder>" or "done|<suppressedUntil>|<outcome>"
-- (holder: the replica's lease-holder token, ADR 0026; absent in records of older versions).
local function decisionRecord(state, untilMs, extra) return state .. '|' .. fmt(untilMs) .. '|' .. extra end
-- state, until (ms), extra ('' when absent: 'executed|<until>' from older versions)
local function readDecisionRecord(d)
  local s1 = string.find(d, '|', 1, true)
  local s2 = string.find(d, '|', s1 + 1, true)
  local extra = ''
  if s2 then extra = string.sub(d, s2 + 1) end
  return string.sub(d, 1, s1 - 1), tonumber(string.sub(d, s1 + 1, (s2 or 0) - 1)), extra
end
-- an in-flight record's extra → reservation, holder ('' when written by an older version)
local function splitHolder(extra)
  local s3 = string.find(extra, '|', 1, true)
  if not s3 then return extra, '' end
  return string.sub(extra, 1, s3 - 1), string.sub(extra, s3 + 1)
end
