/**
 * Object literals in src/ that start with a spread and then add a property the
 * spread's type does not have, e.g. `{ ...row, sequence: 2 }`.
 *
 * Why: V8 (Node 20) gives such an object a hidden class of its own, made for
 * it alone: the copy of the spread's shape is not in V8's transition tree, so
 * each added property makes a new map and descriptor array. Those live in the
 * old generation and keep the young objects they describe alive through
 * scavenges, so every call that builds one promotes memory and brings the
 * next mark-compact closer. Named properties first (`{ sequence: 2, ...row }`)
 * or a spread that only replaces properties it has (`{ ...row, status }`)
 * costs nothing of the kind. Measured in BENCHMARKS.md, 2026-12-06 (4).
 */
import path from "node:path";
import ts from "typescript";

const root = path.resolve(import.meta.dirname, "..");
const config = ts.getParsedCommandLineOfConfigFile(path.join(root, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
if (config === undefined) throw new Error("tsconfig.json could not be read");
// What ships: src/ and gen/ (tests, the bench and scripts build objects off the hot path).
const shipped = config.fileNames.filter((file) => /^(src|gen)\//.test(path.relative(root, file)));
const program = ts.createProgram({ rootNames: shipped, options: config.options });
const checker = program.getTypeChecker();
const found: string[] = [];

/**
 * Whether every type the spread may be has the property (a union's members
 * each). A record (`Record<string, string>`) may have any: the property may be
 * a replacement, which only this order expresses.
 */
function spreadHas(type: ts.Type, name: string): boolean {
  // Spreading undefined or null adds nothing.
  const members = (type.isUnion() ? type.types : [type]).filter((member) => (member.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)) === 0);
  return members.every((member) => checker.getPropertyOfType(member, name) !== undefined || checker.getIndexInfoOfType(member, ts.IndexKind.String) !== undefined);
}

function visit(file: ts.SourceFile, node: ts.Node): void {
  if (ts.isObjectLiteralExpression(node) && node.properties.length > 1) {
    const [first, ...rest] = node.properties;
    if (first !== undefined && ts.isSpreadAssignment(first)) {
      const spread = checker.getTypeAtLocation(first.expression);
      for (const property of rest) {
        if (ts.isSpreadAssignment(property) || property.name === undefined) continue;
        const name = ts.isIdentifier(property.name) || ts.isStringLiteral(property.name) ? property.name.text : undefined;
        if (name !== undefined && spreadHas(spread, name)) continue;
        const { line } = file.getLineAndCharacterOfPosition(node.getStart(file));
        found.push(`${path.relative(root, file.fileName)}:${line + 1}: \`${property.getText(file)}\` is added after a leading spread`);
        break;
      }
    }
  }
  ts.forEachChild(node, (child) => visit(file, child));
}

for (const file of program.getSourceFiles()) {
  if (file.fileName.startsWith(path.join(root, "src") + path.sep)) visit(file, file);
}
if (found.length > 0) {
  process.stderr.write(`${found.join("\n")}\n\nPut named properties before the spread (see scripts/check-literals.ts for why).\n`);
  process.exit(1);
}
