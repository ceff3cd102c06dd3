/**
 * Opcodes of the state store's typed ops where they travel as numbers: the
 * Redis batch interpreter (rules/store/lua/batch.lua, whose header lists each
 * op's fields) and the partition op log (partition-oplog.ts, ADR 0047), which
 * logs only the ops that change state, plus `Drop` (a key the memory store's
 * sweep removed; op log only).
 */
export const enum OpCode {
  Drop = 0,
  WindowAdd = 1,
  ZCount = 2,
  DistinctAdd = 3,
  DistinctMembers = 4,
  CounterAdd = 5,
  CounterIncrease = 6,
  SustainedObserve = 7,
  SustainedGet = 8,
  DuePop = 9,
  SeenTouch = 10,
  EpisodeFire = 11,
  EpisodeTouch = 12,
  EpisodeClear = 13,
  EpisodeQuiet = 14,
  EpisodeGet = 15,
  SequenceStep = 16,
  MaxSet = 17,
  MaxGet = 18,
  EpisodeRelease = 19,
}
