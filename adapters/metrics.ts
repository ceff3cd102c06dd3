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

/**
 * The metric registered on `registry` under `name`, or the one `make` creates and
 * registers: components that share a registry (the engine's) each ask for a metric
 * and get the one instance, never a duplicate-name error.
 */
export function reuseMetric<T>(registry: Registry | undefined, name: string, make: () => T): T {
  const existing = registry?.getSingleMetric(name);
  return existing ? (existing as unknown as T) : make();
}

export { Registry };
