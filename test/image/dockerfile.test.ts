import { readFileSync } from "node:fs";
import path from "node:path";
import { DockerfileParser } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const text = readFileSync(path.join(ROOT, "Dockerfile"), "utf8");
const dockerfile = DockerfileParser.parse(text);
/** Instructions of the last stage (the runtime image), as [KEYWORD, arguments]. */
const runtime = (() => {
  const all = dockerfile.getInstructions();
  const lastFrom = all.map((i) => i.getKeyword()).lastIndexOf("FROM");
  return all.slice(lastFrom).map((i) => [i.getKeyword(), i.getArgumentsContent() ?? ""] as const);
})();
const last = (keyword: string) => runtime.filter(([k]) => k === keyword).at(-1)?.[1];

/** `docker build` needs an engine this machine has not: the Dockerfile is linted and its promises checked here. */
describe("Dockerfile", () => {
  it("passes the linter (dockerfile-utils, the VS Code Docker extension's)", () => {
    expect(validate(text).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it("builds in one stage and runs from another, on a pinned Node LTS slim base", () => {
    const froms = dockerfile.getFROMs().map((f) => f.getImageName());
    expect(froms.length).toBe(2);
    expect(text).toMatch(/^ARG NODE_IMAGE=node:\d+\.\d+-bookworm-slim$/m);
    expect(text).toContain("npm ci");
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it("runs as a numeric non-root uid, with node itself as PID 1 (no init wrapper) and the binary as entrypoint", () => {
    expect(last("USER")).toMatch(/^[1-9]\d{3,}:[1-9]\d{3,}$/);
    expect(JSON.parse(last("ENTRYPOINT")!)).toEqual(["node", "bin/otp-orchestrator.js"]);
    expect(JSON.parse(last("CMD")!)).toEqual(["serve"]);
    expect(text).not.toMatch(/tini|dumb-init/);
    // Everything the runtime reads: the bundles (with the dashboard's files beside them), production modules, the binary.
    const copied = runtime.filter(([k]) => k === "COPY").map(([, args]) => args.split(/\s+/).at(-1));
    expect(copied).toEqual(expect.arrayContaining(["node_modules", "dist", "bin"]));
    expect(runtime.map(([k]) => k)).toContain("LABEL");
    expect(last("LABEL")).toContain("org.opencontainers.image.source");
  });

  it("sends only sources to the build (.dockerignore)", () => {
    const ignore = readFileSync(path.join(ROOT, ".dockerignore"), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    expect(ignore[0]).toBe("*");
    expect(ignore.slice(1).sort()).toEqual(["!bin/", "!gen/", "!package-lock.json", "!package.json", "!scripts/build.mjs", "!src/", "!tsconfig.json"]);
  });
});
