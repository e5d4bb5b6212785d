/**
 * The Neon API v2 endpoints the fake serves, named as in `@neondatabase/api-client`'s OpenAPI spec
 * (path template and operationId): the ones the `neon` provisioner calls, plus the listings tests
 * read. Tests name a route either way (`"POST /projects/{project_id}/branches"` or
 * `"createProjectBranch"`) to count calls and inject faults, so the table is the fake's public
 * vocabulary; the Hono app registers one handler per entry. Also the Hono environment every
 * middleware and handler of the fake runs in.
 */
import type { FakeNeonState } from "./model.ts";

export const NEON_ROUTES = [
  { method: "GET", template: "/projects/{project_id}", operationId: "getProject" },
  { method: "GET", template: "/projects/{project_id}/branches", operationId: "listProjectBranches" },
  { method: "POST", template: "/projects/{project_id}/branches", operationId: "createProjectBranch" },
  { method: "GET", template: "/projects/{project_id}/branches/{branch_id}", operationId: "getProjectBranch" },
  { method: "DELETE", template: "/projects/{project_id}/branches/{branch_id}", operationId: "deleteProjectBranch" },
  {
    method: "GET",
    template: "/projects/{project_id}/branches/{branch_id}/roles",
    operationId: "listProjectBranchRoles",
  },
  {
    method: "POST",
    template: "/projects/{project_id}/branches/{branch_id}/roles",
    operationId: "createProjectBranchRole",
  },
  {
    method: "GET",
    template: "/projects/{project_id}/branches/{branch_id}/databases",
    operationId: "listProjectBranchDatabases",
  },
  {
    method: "POST",
    template: "/projects/{project_id}/branches/{branch_id}/databases",
    operationId: "createProjectBranchDatabase",
  },
  { method: "GET", template: "/projects/{project_id}/operations/{operation_id}", operationId: "getProjectOperation" },
  { method: "GET", template: "/projects/{project_id}/connection_uri", operationId: "getConnectionURI" },
] as const;

export type NeonRoute = (typeof NEON_ROUTES)[number];
export type NeonOperationId = NeonRoute["operationId"];

/** The base path of Neon API v2, below which the spec's templates live. */
export const API_BASE = "/api/v2";

/** The route as tests name it: `"METHOD /template"`. */
export const routeKey = (route: NeonRoute) => `${route.method} ${route.template}`;

/** Whether `name` (`"METHOD /template"` or an operationId) names `route`. */
export const matchesRoute = (route: NeonRoute, name: string) => routeKey(route) === name || route.operationId === name;

/** The spec's `{param}` template as a Hono path under the API base. */
export const honoPath = (template: string) => `${API_BASE}${template.replace(/\{(\w+)\}/g, ":$1")}`;

/**
 * Turns a Neon-style `connection_uri` into the connection string to hand out, e.g. a real local
 * Postgres database for tests that connect.
 */
export type DatabaseFor = (
  branchId: string,
  databaseName: string,
  roleName: string,
  options: { readonly pooled: boolean },
) => Promise<string>;

export interface FakeNeonEnv {
  Variables: {
    /** The store the handlers read and change. */
    state: FakeNeonState;
    /** See `FakeNeonAppOptions.databaseFor`. */
    databaseFor: DatabaseFor | undefined;
    /** The spec route the request matched; unset when none did. */
    route: NeonRoute | undefined;
  };
}
