// Compiles ImageRegistry.sol with the pinned solc-js into the artifact committed in the Python
// package. Settings are fixed here (not solc's defaults) so the same source always gives the
// same bytecode: `make contracts` writes the artifact, a test recompiles and compares.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const SOURCE = "ImageRegistry.sol";
const CONTRACT = "ImageRegistry";
const SETTINGS = {
  evmVersion: "prague",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function standardInput(sourceText) {
  return { language: "Solidity", sources: { [SOURCE]: { content: sourceText } }, settings: SETTINGS };
}

function compile(sourceText) {
  const input = standardInput(sourceText);
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    for (const e of errors) process.stderr.write(e.formattedMessage + "\n");
    process.exit(1);
  }
  for (const w of output.errors || []) process.stderr.write(w.formattedMessage + "\n");
  const contract = output.contracts[SOURCE][CONTRACT];
  return {
    contractName: CONTRACT,
    compiler: { name: "solc-js", version: solc.version(), settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, metadata: SETTINGS.metadata } },
    sourceSha256: crypto.createHash("sha256").update(sourceText).digest("hex"),
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
  };
}

const here = __dirname;
const committed = path.join(here, "..", "src", "scanseal", "ledger", "ImageRegistry.json");
const sourceText = fs.readFileSync(path.join(here, SOURCE), "utf8");

// `--standard-json-input FILE`: the exact compiler input of the artifact, for tools that compile
// it themselves (slither, `make slither`). `--check-build FILE`: refuse a solc standard-JSON
// output whose ImageRegistry bytecode is not the committed artifact's.
if (process.argv[2] === "--standard-json-input") {
  const input = standardInput(sourceText);
  // every output (source maps, AST) for the analyser; the selection does not change the bytecode
  input.settings = { ...SETTINGS, outputSelection: { "*": { "*": ["*"], "": ["ast"] } } };
  fs.writeFileSync(process.argv[3], JSON.stringify(input, null, 1) + "\n");
  process.exit(0);
}
if (process.argv[2] === "--check-build") {
  const built = JSON.parse(fs.readFileSync(process.argv[3], "utf8")).contracts[SOURCE][CONTRACT].evm;
  const artifact = JSON.parse(fs.readFileSync(committed, "utf8"));
  const same = "0x" + built.bytecode.object === artifact.bytecode
    && "0x" + built.deployedBytecode.object === artifact.deployedBytecode;
  if (!same) {
    process.stderr.write("the analysed build differs from the committed artifact\n");
    process.exit(1);
  }
  process.stdout.write("the analysed build is byte-identical to the committed artifact\n");
  process.exit(0);
}
const out = process.argv[2] || committed;
const artifact = compile(sourceText);
const text = JSON.stringify(artifact, null, 1) + "\n";
if (out === "-") process.stdout.write(text);
else fs.writeFileSync(out, text);
