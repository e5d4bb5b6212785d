/**
 * Starts one throwaway embedded Postgres (or uses DATABASE_URL) and one gateway for the Node-side
 * suites, and hands their URLs to the tests through `inject()`.
 */
import type { TestProject } from "vitest/node";
import { startLocalStack } from "../../src/dev/stack.ts";

declare module "vitest" {
  export interface ProvidedContext {
    postgresUrl: string;
    gatewayUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const stack = await startLocalStack({ gateway: { port: 0 } });
  project.provide("postgresUrl", stack.postgres.url);
  project.provide("gatewayUrl", stack.gateway.url);
  return async () => {
    await stack.stop();
  };
}
