/** Where the repository and the real data live. @module */
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** `NIXDOCS_DATA_DIR`, else `../shared/data` next to the repository. The data is never copied in. */
export function dataDir(): string {
  const dir = process.env.NIXDOCS_DATA_DIR ?? path.resolve(repoRoot, "../shared/data");
  if (!existsSync(dir)) throw new Error(`data directory ${dir} does not exist; set NIXDOCS_DATA_DIR`);
  return dir;
}

export interface DataFile {
  namespace: string;
  file: string;
}

/** The `*-options.json.gz` files, smallest namespace name first is not meaningful: sorted by name. */
export function dataFiles(): DataFile[] {
  const dir = dataDir();
  const files = readdirSync(dir)
    .filter((f) => /-options\.json(\.gz)?$/.test(f))
    .sort()
    .map((f) => ({ namespace: f.replace(/-options\.json(\.gz)?$/, ""), file: path.join(dir, f) }));
  if (files.length === 0) throw new Error(`no *-options.json.gz files in ${dir}`);
  return files;
}
