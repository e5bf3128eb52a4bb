#!/usr/bin/env node
// A `solc` command line backed by the pinned solc-js, for tools that expect a native solc binary
// (slither through crytic-compile): answers `--version` and `--standard-json` (stdin to stdout).
// Nothing is downloaded; the compiler is the one in package-lock.json.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

// Standard JSON may name sources by `urls` (paths) instead of inlining `content`; native solc
// reads them from disk, so this does too, but only below the directories given by --allow-paths.
function importer(allowed) {
  return (url) => {
    const full = path.resolve(url);
    if (!allowed.some((dir) => full === dir || full.startsWith(dir + path.sep))) {
      return { error: `${url} is outside the allowed paths` };
    }
    try {
      return { contents: fs.readFileSync(full, "utf8") };
    } catch (error) {
      return { error: String(error) };
    }
  };
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else if (args.includes("--standard-json")) {
  const chunks = [];
  process.stdin.on("data", (chunk) => chunks.push(chunk));
  process.stdin.on("end", () => {
    const at = args.indexOf("--allow-paths");
    const allowed = [process.cwd(), ...(at >= 0 ? args[at + 1].split(",") : [])].map((p) => path.resolve(p));
    const input = Buffer.concat(chunks).toString("utf8");
    const output = solc.compile(input, { import: importer(allowed) });
    // SCANSEAL_SOLC_OUTPUT keeps a copy, so that `make slither` can check the build it analysed
    if (process.env.SCANSEAL_SOLC_OUTPUT) fs.writeFileSync(process.env.SCANSEAL_SOLC_OUTPUT, output);
    process.stdout.write(output);
  });
} else {
  process.stderr.write("solc-cli.js supports only --version and --standard-json\n");
  process.exit(2);
}
