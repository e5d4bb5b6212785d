#!/usr/bin/env node
// The `tenantry` CLI (package.json "bin": `npx tenantry …` in a clone). Runs the TypeScript source via tsx.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
