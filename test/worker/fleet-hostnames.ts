/** The fleet of custom hostnames global-setup.ts creates on a fake Cloudflare API and domains-cron-limits.test.ts polls. */
export const FLEET_HOSTNAMES = 10_000;
export const fleetHostname = (i: number) => `fleet-${i}.dm-limits.example.com`;
