/**
 * The `url` provisioner: registers a database someone else created. The control plane stores the
 * given connection strings (encrypted) at creation, so there is nothing to provision; deleting the
 * tenant forgets the database but never drops it (it is not ours).
 *
 * A connection string names a host the Worker will then call (migrations at onboarding, every
 * tenant request after), so whoever may create tenants could otherwise point it at any host. Only
 * hosts on `URL_PROVISIONER_HOSTS` are accepted: exact names, or `*.suffix` for any name under the
 * suffix. An empty list turns the provisioner off.
 */
import { AppError } from "../../shared/errors.ts";
import { type Provisioner, ProvisionerError } from "./types.ts";

/** Whether `host` is on the allow-list: an exact name, or under a `*.suffix` entry (not the suffix itself). */
export function urlHostAllowed(host: string, allowed: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return allowed.some((entry) => {
    const pattern = entry.trim().toLowerCase();
    if (pattern.startsWith("*.")) return name.endsWith(pattern.slice(1)) && name.length > pattern.length - 1;
    return pattern !== "" && name === pattern;
  });
}

/** The host a connection string names, or undefined when it is not a URL with one. */
function hostOf(uri: string): string | undefined {
  try {
    const { protocol, hostname } = new URL(uri);
    if (protocol !== "postgres:" && protocol !== "postgresql:") return undefined;
    return hostname.replace(/^\[|\]$/g, "") || undefined;
  } catch {
    return undefined;
  }
}

export function createUrlProvisioner(regions: readonly string[], hosts: readonly string[] = []): Provisioner {
  const allowed = hosts.map((h) => h.trim()).filter(Boolean);
  return {
    kind: "url",
    regions: () => regions,
    checkConnection(uri: string, path: string) {
      if (allowed.length === 0) {
        throw new AppError(
          422,
          "url_provisioner_disabled",
          "The url provisioner is off: URL_PROVISIONER_HOSTS is empty.",
          {
            extras: { errors: [{ path: "provisioner", message: "set URL_PROVISIONER_HOSTS to enable url" }] },
          },
        );
      }
      const host = hostOf(uri);
      if (!host || !urlHostAllowed(host, allowed)) {
        throw new AppError(
          422,
          "url_host_not_allowed",
          "The connection string's host is not on URL_PROVISIONER_HOSTS.",
          {
            extras: { errors: [{ path, message: `host must match one of: ${allowed.join(", ")}` }] },
          },
        );
      }
    },
    async provision() {
      throw new ProvisionerError(
        "invalid_input",
        "the url provisioner registers an existing connection string at creation",
      );
    },
    async deprovision() {},
    async exists() {
      return true;
    },
  };
}
