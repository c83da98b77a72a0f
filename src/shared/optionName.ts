/**
 * Option paths. An option's identity is its `loc` (list of segments); the display name is
 * `lib.showOption loc`. Segments that are not Nix identifiers are quoted and may contain dots
 * (`"com.apple.Safari"`), so names are never split on dots: `parseOptionName` reads the quoting.
 * @module
 */

const NIX_KEYWORDS = new Set(["if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"]);
const NIX_IDENTIFIER = /^[a-zA-Z_][a-zA-Z0-9_'-]*$/;
const NAMED_PLACEHOLDER = /^<.*>$/s;

/** True for the segments the module system uses as placeholders: `<name>`, `<user>`, `*`. */
export function isPlaceholder(segment: string): boolean {
  return segment === "*" || NAMED_PLACEHOLDER.test(segment);
}

/** `lib.strings.escapeNixString`: a JSON string with `$` escaped so `${` cannot interpolate. */
function escapeNixString(s: string): string {
  return JSON.stringify(s).replaceAll("$", "\\$");
}

/** `lib.showOption`: the display name of a `loc`. */
export function showOption(loc: readonly string[]): string {
  return loc
    .map((part) =>
      isPlaceholder(part) || (NIX_IDENTIFIER.test(part) && !NIX_KEYWORDS.has(part)) ? part : escapeNixString(part),
    )
    .join(".");
}

/**
 * The `loc` of a display name, reading `"quoted"` segments (with JSON/Nix escapes) and `<...>`
 * placeholders as single segments. Returns null for a name that is not well formed.
 */
export function parseOptionName(name: string): string[] | null {
  const loc: string[] = [];
  let i = 0;
  while (i <= name.length) {
    if (name[i] === '"') {
      let j = i + 1;
      let raw = "";
      for (; j < name.length && name[j] !== '"'; j++) {
        if (name[j] === "\\") {
          const next = name[j + 1];
          if (next === undefined) return null;
          raw += next === "$" ? "$" : "\\" + next;
          j++;
        } else raw += name[j];
      }
      if (j >= name.length) return null;
      try {
        loc.push(JSON.parse(`"${raw}"`) as string);
      } catch {
        return null;
      }
      i = j + 1;
    } else if (name[i] === "<") {
      const close = name.indexOf(">", i);
      if (close < 0) return null;
      loc.push(name.slice(i, close + 1));
      i = close + 1;
    } else {
      let j = i;
      while (j < name.length && name[j] !== ".") j++;
      const seg = name.slice(i, j);
      if (seg === "") return null;
      loc.push(seg);
      i = j;
    }
    if (i === name.length) return loc;
    if (name[i] !== ".") return null;
    i++;
    if (i === name.length) return null;
  }
  return loc;
}

/** A stable key for a `loc`, used as the option's identity in storage. */
export function locKey(loc: readonly string[]): string {
  return JSON.stringify(loc);
}
