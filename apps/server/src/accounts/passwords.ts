import { hash, verify } from "@node-rs/argon2";

/** Shortest and longest password accepted (characters); the upper bound caps KDF input. */
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

/**
 * argon2id with OWASP's first recommended setting (19 MiB memory, 2
 * iterations, 1 lane: OWASP Password Storage Cheat Sheet), which is also
 * @node-rs/argon2's default. Returns a PHC string that carries its
 * parameters, so raising them later still verifies old hashes.
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
}

/** True when `password` matches the PHC string; false (never throws) for a malformed hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** A reason the password is refused, or null when it is acceptable. */
export function passwordProblem(password: string): string | null {
  if (password.length < PASSWORD_MIN_LENGTH)
    return `The password must be at least ${PASSWORD_MIN_LENGTH} characters.`;
  if (password.length > PASSWORD_MAX_LENGTH)
    return `The password must be at most ${PASSWORD_MAX_LENGTH} characters.`;
  return null;
}

/**
 * A hash verified when there is no user, so that an unknown address costs
 * as much time as a wrong password and sign-in does not reveal which
 * addresses have accounts.
 */
let dummyHash: Promise<string> | null = null;
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword("sluice-no-such-user");
  return dummyHash;
}
