/**
 * The `url` provisioner: registers a database someone else created. The control plane stores the
 * given connection strings (encrypted) at creation, so there is nothing to provision; deleting the
 * tenant forgets the database but never drops it (it is not ours).
 */
import { type Provisioner, ProvisionerError } from "./types.ts";

export function createUrlProvisioner(regions: readonly string[]): Provisioner {
  return {
    kind: "url",
    regions: () => regions,
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
