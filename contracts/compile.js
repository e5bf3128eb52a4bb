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

function compile(sourceText) {
  const input = { language: "Solidity", sources: { [SOURCE]: { content: sourceText } }, settings: SETTINGS };
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
const out = process.argv[2] || path.join(here, "..", "src", "scanseal", "ledger", "ImageRegistry.json");
const artifact = compile(fs.readFileSync(path.join(here, SOURCE), "utf8"));
const text = JSON.stringify(artifact, null, 1) + "\n";
if (out === "-") process.stdout.write(text);
else fs.writeFileSync(out, text);
