// Print the CID that npm ipfs-unixfs-importer gives each file named on the command line,
// with the importer's defaults (CIDv1, raw leaves, 256 KiB chunks, balanced DAG of 174 links).
// Blocks are discarded: only the root CID matters for the golden vectors.
import { createReadStream } from 'node:fs'
import { importer } from 'ipfs-unixfs-importer'

const discard = {
  async put (cid) { return cid },
  async has () { return false },
  async get () { throw new Error('not stored') }
}

for (const path of process.argv.slice(2)) {
  for await (const entry of importer([{ content: createReadStream(path) }], discard)) {
    console.log(`${entry.cid.toString()} ${path}`)
  }
}
