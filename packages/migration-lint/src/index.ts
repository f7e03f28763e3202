export { type Deprecation, readDeprecations } from "./deprecations.ts";
export { type Finding, formatFinding } from "./finding.ts";
export { type LintOptions, lintMigrations } from "./lint-migrations.ts";
export { compareVersions, type Release, readReleases, releaseIndexOf } from "./releases.ts";
export { lintStatements, type RuleContext } from "./sql-rules.ts";
