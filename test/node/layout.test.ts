import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkFile, checkTree, describe as describeViolation } from "../../scripts/layout.ts";

const srcRoot = join(import.meta.dirname, "..", "..", "src");
const at = (path: string) => join(srcRoot, path);

describe("layout rules", () => {
  it("src/ has no import against the one-way rule, no file over 400 lines, no function over 80", () => {
    expect(checkTree(srcRoot).map(describeViolation)).toEqual([]);
  });

  it("flags control or shared importing worker, and anything but dev importing dev", () => {
    const cases: [string, string][] = [
      ["control/x.ts", "../worker/http/common.ts"],
      ["control/export/x.ts", "../../worker/types.ts"],
      ["shared/x.ts", "../control/schema.ts"],
      ["worker/x.ts", "../dev/seed.ts"],
      ["cli/x.ts", "../dev/config.ts"],
      ["cli/x.ts", "../worker/app.ts"],
    ];
    for (const [file, target] of cases) {
      const kinds = checkFile(srcRoot, at(file), `import { a } from "${target}";\n`).map((v) => v.kind);
      expect(kinds, `${file} → ${target}`).toEqual(["import"]);
    }
    const dynamic = checkFile(srcRoot, at("control/x.ts"), 'const m = await import("../worker/app.ts");\n');
    expect(dynamic.map((v) => v.kind)).toEqual(["import"]);
  });

  it("allows the one-way direction and package imports", () => {
    const text = [
      'import { a } from "../shared/errors.ts";',
      'import { b } from "../control/schema.ts";',
      'import { c } from "./local.ts";',
      'import { Hono } from "hono";',
    ].join("\n");
    expect(checkFile(srcRoot, at("worker/x.ts"), text)).toEqual([]);
    expect(checkFile(srcRoot, at("dev/x.ts"), 'import { w } from "../worker/app.ts";\n')).toEqual([]);
  });

  it("counts file and function lengths", () => {
    const body = Array.from({ length: 81 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const long = `export function big() {\n${body}\n}\n`;
    expect(checkFile(srcRoot, at("control/x.ts"), long)).toEqual([
      { kind: "function-size", file: "src/control/x.ts", line: 1, name: "big", lines: 83 },
    ]);
    const arrow = `export const f = () => {\n${body}\n};\n`;
    expect(checkFile(srcRoot, at("control/x.ts"), arrow).map((v) => v.kind)).toEqual(["function-size"]);
    const file = Array.from({ length: 401 }, (_, i) => `export const c${i} = ${i};`).join("\n");
    expect(checkFile(srcRoot, at("shared/x.ts"), `${file}\n`).map((v) => v.kind)).toEqual(["file-size"]);
    expect(checkFile(srcRoot, at("generated/x.ts"), `${file}\n`)).toEqual([]);
  });
});
