/**
 * Each component owns a private prom-client Registry (no global default
 * registry), so agent, engine and demo can run in one process without
 * clashing metric names. Names follow Prometheus conventions:
 * `nodewarden_<component>_<what>_<unit|total>`.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createRegistry(component: string, opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ component });
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'nodewarden_' });
  return registry;
}

export { Registry };
