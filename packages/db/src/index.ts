export {
  type BlobReference,
  type DatabaseSnapshot,
  dumpDatabase,
  loadDatabase,
  nonEmptyTables,
  type TableDump,
} from "./backup.ts";
export {
  createDatabase,
  type Database,
  type DatabaseOptions,
  type Orm,
  ping,
  type Queryable,
  type Transaction,
  type TransactionOptions,
  withTransaction,
} from "./database.ts";
export { ensureEventPartitions } from "./event-partitions.ts";
export { compressPayload, decompressPayload, type PayloadStorage } from "./event-payload.ts";
export {
  type AppliedMigration,
  applyMigrations,
  EditedMigrationError,
  ensureMigrationTables,
  LostMigrationLockError,
  type MigrateOptions,
  type MigrationLog,
  type MigrationState,
  readMigrationState,
  SchemaNotReadyError,
  type SchemaWaitOptions,
  waitForSchema,
} from "./migrate.ts";
export {
  type MigrationFile,
  migrationsDir,
  NO_TRANSACTION_MARKER,
  readMigrationFiles,
} from "./migration-files.ts";
export {
  changedName,
  checkGate,
  compareReleases,
  type Deprecation,
  type GatedChange,
  type GateRefusal,
  gatedChanges,
  type MigrationGate,
  neededSchemaVersion,
  parseStatements,
  readDeprecationsFile,
} from "./migration-gate.ts";
export { type MigrationLockHolder, readMigrationLock } from "./migration-lock.ts";
export * from "./node-registry.ts";
export * from "./queries/alert-recipients.ts";
export * from "./queries/alerts.ts";
export * from "./queries/api-tokens.ts";
export * from "./queries/artifacts.ts";
export * from "./queries/audit-log.ts";
export * from "./queries/events.ts";
export * from "./queries/ingest-batch.ts";
export * from "./queries/issue-grouping.ts";
export * from "./queries/issue-merge.ts";
export * from "./queries/issue-resolution.ts";
export * from "./queries/issue-tags.ts";
export * from "./queries/issues.ts";
export * from "./queries/leases.ts";
export * from "./queries/members.ts";
export * from "./queries/organizations.ts";
export * from "./queries/project-grouping-rules.ts";
export * from "./queries/project-keys.ts";
export * from "./queries/projects.ts";
export * from "./queries/quotas.ts";
export * from "./queries/releases.ts";
export * from "./queries/retention.ts";
export * from "./queries/sessions.ts";
export * from "./queries/upgrade-stats.ts";
export * from "./queries/usage-stats.ts";
export * from "./queries/users.ts";
export * from "./queries/web-pages.ts";
export * as schema from "./schema.ts";
export { splitStatements } from "./split-statements.ts";
export { loadSqlParser, parseSql, parseSqlOffThread } from "./sql-parser.ts";
export { isStorableText } from "./storable-text.ts";
