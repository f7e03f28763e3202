/** Longest release version Sentry accepts (characters). */
export const MAX_RELEASE_LENGTH = 200;
/** Longest environment name Sentry accepts (characters). */
export const MAX_ENVIRONMENT_LENGTH = 64;

/**
 * Whether `value` has a character Sentry refuses in releases and
 * environments (`/`, `\`, and — beyond Sentry's `\r \n \t \f` — every C0
 * control character and DEL, since Postgres cannot store NUL and nobody
 * types the rest). Sources: getsentry/sentry `BAD_RELEASE_CHARS`,
 * getsentry/sentry-release-parser `VALID_API_ATTRIBUTE_REGEX`.
 */
function hasBadCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x2f || c === 0x5c) return true;
  }
  return false;
}

/**
 * The one rule for a release version, used by ingest and the API alike
 * (getsentry/sentry-release-parser `validate_release`, sentry
 * `Release.is_valid_version`): 1 to 200 characters, not blank, no bad
 * character, and not `.`, `..` or `latest` in any case. The value is
 * checked as given; callers that accept surrounding blanks trim first.
 */
export function isValidReleaseVersion(version: string): boolean {
  return (
    version.length > 0 &&
    version.length <= MAX_RELEASE_LENGTH &&
    version.trim() !== "" &&
    !hasBadCharacter(version) &&
    version !== "." &&
    version !== ".." &&
    version.toLowerCase() !== "latest"
  );
}

/**
 * The one rule for an environment name (sentry-release-parser
 * `validate_environment`, sentry `Environment.is_valid_name`): 1 to 64
 * characters, not blank, no bad character, not `.`, `..` or `none` in any case.
 */
export function isValidEnvironmentName(name: string): boolean {
  return (
    name.length > 0 &&
    name.length <= MAX_ENVIRONMENT_LENGTH &&
    name.trim() !== "" &&
    !hasBadCharacter(name) &&
    name !== "." &&
    name !== ".." &&
    name.toLowerCase() !== "none"
  );
}
