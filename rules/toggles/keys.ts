/** Every Redis key and channel the toggles use, from one builder (prefix = config `redis.keyPrefix`). */
export interface ToggleKeys {
  /** Hash: field = rule id, value = JSON RuleToggle. */
  hash: string;
  /** Pub/sub channel: message = the rule id that changed. */
  channel: string;
}

export function toggleKeys(prefix: string): ToggleKeys {
  return { hash: `${prefix}toggles`, channel: `${prefix}toggles:changed` };
}
