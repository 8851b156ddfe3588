// The environment store's public face: the catalog, the cache of built environments, and the
// injected agent's launch command, for the manager, engines and supervisor to import.
export { CATALOG, type CatalogEntry, catalogEntry, ENVIRONMENT_BUILD_TIMEOUT_MS, slugOf } from "./catalog.js";
export { AGENT_ARGV, currentAgentDigest, injectAgent } from "./inject.js";
export {
  EnvironmentStore,
  type EnvironmentStoreOptions,
  type InstalledEnvironment,
  type PullOptions,
  type PullProgress,
} from "./store.js";
