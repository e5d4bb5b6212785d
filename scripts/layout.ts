/**
 * The layout rules of src/, checked over the real import graph and syntax tree:
 * - folders depend one way: shared ← control ← worker, cli; dev may use them all, and nothing
 *   under src/ but dev imports dev;
 * - no source file over 400 lines and no function over 80 lines (src/generated aside).
 * `tsx scripts/layout.ts` prints every violation and exits 1 when there is one; the test in
 * test/node/layout.test.ts runs the same checks.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

export const MAX_FILE_LINES = 400;
export const MAX_FUNCTION_LINES = 80;

/** Which top-level folders of src/ each folder may import (besides itself). */
export const ALLOWED: Record<string, readonly string[]> = {
  shared: [],
  generated: ["shared"],
  control: ["shared", "generated"],
  worker: ["control", "shared", "generated"],
  cli: ["control", "shared", "generated"],
  dev: ["cli", "control", "worker", "shared", "generated"],
};

export type Violation =
  | { kind: "import"; file: string; line: number; target: string }
  | { kind: "file-size"; file: string; lines: number }
  | { kind: "function-size"; file: string; line: number; name: string; lines: number };

/** The top-level folder of src/ a path lies in, or undefined outside src/. */
function layerOf(srcRoot: string, path: string): string | undefined {
  const rel = relative(srcRoot, path);
  if (rel.startsWith("..")) return undefined;
  const top = rel.split(/[\\/]/)[0];
  return top && rel.includes("/") ? top : undefined;
}

function lineOf(source: ts.SourceFile, pos: number): number {
  return source.getLineAndCharacterOfPosition(pos).line + 1;
}

function functionName(node: ts.Node): string {
  if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isFunctionExpression(node)) && node.name)
    return node.name.getText();
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText();
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText();
  if (parent && ts.isCallExpression(parent)) return `(callback of ${parent.expression.getText().slice(0, 40)})`;
  return "(anonymous)";
}

/** Checks one file given its path (absolute) and text. */
export function checkFile(srcRoot: string, path: string, text: string): Violation[] {
  const file = relative(resolve(srcRoot, ".."), path);
  const layer = layerOf(srcRoot, path);
  const out: Violation[] = [];
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  if (layer !== "generated" && lines > MAX_FILE_LINES) out.push({ kind: "file-size", file, lines });

  const visit = (node: ts.Node): void => {
    const specifier =
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier
        ? node.moduleSpecifier
        : ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword
          ? node.arguments[0]
          : undefined;
    if (specifier && ts.isStringLiteral(specifier) && specifier.text.startsWith(".") && layer) {
      const target = layerOf(srcRoot, resolve(dirname(path), specifier.text));
      if (target && target !== layer && !ALLOWED[layer]?.includes(target))
        out.push({ kind: "import", file, line: lineOf(source, specifier.getStart()), target: specifier.text });
    }
    if (
      layer !== "generated" &&
      (ts.isFunctionDeclaration(node) ||
        ts.isFunctionExpression(node) ||
        ts.isArrowFunction(node) ||
        ts.isMethodDeclaration(node))
    ) {
      const start = lineOf(source, node.getStart());
      const length = lineOf(source, node.getEnd()) - start + 1;
      if (length > MAX_FUNCTION_LINES)
        out.push({ kind: "function-size", file, line: start, name: functionName(node), lines: length });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Every violation under a src/ folder. */
export function checkTree(srcRoot: string): Violation[] {
  return tsFiles(srcRoot).flatMap((path) => checkFile(srcRoot, path, readFileSync(path, "utf8")));
}

export function describe(v: Violation): string {
  switch (v.kind) {
    case "import":
      return `${v.file}:${v.line} imports ${v.target} (folders depend one way: shared ← control ← worker, cli)`;
    case "file-size":
      return `${v.file} has ${v.lines} lines (at most ${MAX_FILE_LINES})`;
    case "function-size":
      return `${v.file}:${v.line} ${v.name} has ${v.lines} lines (at most ${MAX_FUNCTION_LINES})`;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const violations = checkTree(join(import.meta.dirname, "..", "src"));
  for (const v of violations) console.log(describe(v));
  console.log(violations.length === 0 ? "layout: ok" : `layout: ${violations.length} violation(s)`);
  process.exit(violations.length === 0 ? 0 : 1);
}
