/**
 * Run configuration: the zod schema (single source of truth), loading with line:column error
 * reports and `--set` overrides, and the generated reference.
 */
export { configSchema, type ConfigInput, type EvalSpec, type KilnConfig } from './schema.js';
export { loadConfig, loadResolvedRunConfig, parseConfigText, resolvedYaml, THIS_MACHINE, type LoadedConfig, type MachineCapabilities } from './load.js';
export { ConfigError, formatPath } from './errors.js';
export { applyOverrides, parseKeyPath, type AppliedOverride } from './overrides.js';
export { configHelpText, configKeys, configReference, type ConfigKeyDoc } from './docs.js';
