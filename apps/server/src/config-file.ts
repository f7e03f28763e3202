import { readFileSync } from "node:fs";
import { type Config, readConfig } from "./config.ts";
import type { Logger } from "./logger.ts";

/**
 * The environment with `SLUICE_CONFIG_FILE`'s settings laid over it: one
 * `KEY=VALUE` per line, blank lines and `#` comments ignored, an optional
 * `export ` prefix and quotes around the value allowed. Throws naming the
 * file when it cannot be read.
 */
export function environmentWithConfigFile(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const path = env.SLUICE_CONFIG_FILE;
  if (!path) return env;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`SLUICE_CONFIG_FILE: cannot read ${path}: ${(error as Error).message}`);
  }
  const merged = { ...env };
  for (const line of text.split("\n")) {
    const match = /^\s*(?:export\s+)?([A-Z][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || line.trim().startsWith("#")) continue;
    merged[match[1] as string] = (match[2] as string).replace(/^(['"])(.*)\1$/, "$2");
  }
  return merged;
}

/**
 * SIGHUP: reads the environment and `SLUICE_CONFIG_FILE` again and applies
 * what may change while serving, the log level and the size limits,
 * without touching any connection. A bad new configuration is logged and
 * the running one kept.
 */
export function reloadConfig(config: Config, log: Logger, env: NodeJS.ProcessEnv): void {
  let result: ReturnType<typeof readConfig>;
  try {
    result = readConfig(environmentWithConfigFile(env));
  } catch (error) {
    log.error({ err: error }, "SIGHUP: configuration not reloaded");
    return;
  }
  if (!result.ok) {
    log.error({ problems: result.problems }, "SIGHUP: configuration not reloaded");
    return;
  }
  log.level = result.config.logLevel;
  config.logLevel = result.config.logLevel;
  Object.assign(config.limits, result.config.limits);
  log.info({ logLevel: config.logLevel, limits: config.limits }, "SIGHUP: configuration reloaded");
}
