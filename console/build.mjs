// Bundles the console into one directory the gateway embeds: index.html, app.js, app.css.
// The output is a pure function of the sources and the pinned esbuild, so CI rebuilds it and
// fails when the checked-in copy differs (console/check.sh).
//
//   node build.mjs <output directory>
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "dist");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  charset: "utf8",
  outfile: join(out, "app.js"),
  // The SDK's dependencies come from its own node_modules (sdk/typescript).
  nodePaths: [join(here, "../sdk/typescript/node_modules")],
  logLevel: "warning",
});
copyFileSync(join(here, "src/index.html"), join(out, "index.html"));
copyFileSync(join(here, "src/app.css"), join(out, "app.css"));
