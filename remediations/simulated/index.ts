/** Simulated cluster for replay and demo: kubectl dumps in, ClusterView + executors out. */
export { loadClusterFile, parseClusterYaml, SIMULATED_KINDS, type SimulatedKind } from './parse.js';
export { createSimulatedCluster, SimulatedApi, SimulatedCluster, type SimulatedClusterOptions } from './simulated-cluster.js';
export { applyJsonPatch, applyMergePatch, labelSelectorMatcher } from './patch.js';
