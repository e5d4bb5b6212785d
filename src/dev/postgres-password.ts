/**
 * The embedded dev Postgres superuser's password: generated per data folder, never `postgres`.
 *
 * The dev cluster listens on a fixed loopback port, and a well-known superuser password would let
 * anything on the machine that can open a TCP connection (or a page that reaches a local proxy)
 * run `COPY … TO PROGRAM` as the cluster's owner. So each cluster gets a random password when it
 * is initialised, kept in `superuser-password` next to its data folder (mode 0600, git-ignored with
 * the rest of `.tenantry/`), where the dev tools that start the cluster read it back. A cluster
 * initialised before this existed still has the old `postgres` password: it is moved to a fresh
 * one on its next start (see rotateLegacyPassword in postgres.ts).
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The password clusters initialised before per-folder passwords were created with. */
export const LEGACY_PASSWORD = "postgres";

const FILE_NAME = "superuser-password";

export function passwordFileOf(parentDir: string): string {
  return join(parentDir, FILE_NAME);
}

/** 32 hex characters: URL-safe, so it needs no escaping in a connection string. */
export function newPassword(): string {
  return randomBytes(16).toString("hex");
}

/** The stored password for the cluster under `parentDir`, or `undefined` when none is stored. */
export async function readPassword(parentDir: string): Promise<string | undefined> {
  try {
    const text = (await readFile(passwordFileOf(parentDir), "utf8")).trim();
    return text === "" ? undefined : text;
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Stores the password readable by its owner only. */
export async function writePassword(parentDir: string, password: string): Promise<void> {
  await writeFile(passwordFileOf(parentDir), `${password}\n`, { mode: 0o600 });
}
