--[[
  prelude.lua — the shared head of the guard scripts (authorize.lua,
  settle.lua, status.lua): the registry (adapters/redis/scripts.ts) runs it
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
-- "in-flight|<leaseEnd>|<reservation>" or "done|<suppressedUntil>|<outcome>".
local function decisionRecord(state, untilMs, extra) return state .. '|' .. fmt(untilMs) .. '|' .. extra end
-- state, until (ms), extra ('' when absent: 'executed|<until>' from older versions)
local function readDecisionRecord(d)
  local s1 = string.find(d, '|', 1, true)
  local s2 = string.find(d, '|', s1 + 1, true)
  local extra = ''
  if s2 then extra = string.sub(d, s2 + 1) end
  return string.sub(d, 1, s1 - 1), tonumber(string.sub(d, s1 + 1, (s2 or 0) - 1)), extra
end
