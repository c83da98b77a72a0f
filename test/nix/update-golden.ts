/**
 * `npm run golden:nix`: rewrite test/nix/golden/*.json from the extractor's current output on the
 * fixtures. Run it on purpose after a deliberate change and review the diff; the tests never
 * write these files.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { extractFixture, goldenFile, goldenText, GOLDEN, libForTests } from "./helpers.ts";

const { lib, reason } = await libForTests();
if (!lib) {
  process.stderr.write(`golden:nix: ${reason}\n`);
  process.exit(3);
}
await mkdir(GOLDEN, { recursive: true });
for (const name of ["collection", "broken"]) {
  const result = await extractFixture(name, lib);
  await writeFile(goldenFile(name), goldenText(result));
  process.stdout.write(`wrote ${goldenFile(name)}: ${Object.keys(result.options).length} options, ${result.errors.length} errors\n`);
}
