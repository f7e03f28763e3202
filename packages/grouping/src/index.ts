export {
  type FingerprintRule,
  matchFingerprintRules,
  parseFingerprintRules,
} from "./fingerprint-rules.ts";
export { frameValues, isInApp } from "./frame-values.ts";
