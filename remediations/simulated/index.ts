/** Simulated cluster for replay and demo: kubectl dumps in, ClusterView + executors out. */
export { loadClusterFile, parseClusterYaml } from './parse.js';
export { createSimulatedCluster, SimulatedCluster } from './simulated-cluster.js';
