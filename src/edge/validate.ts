/** zod at the edge: a failed parse becomes a 400 in the error envelope, naming each field. @module */
import { ApiError } from "../shared/errors.ts";
import { zodIssues } from "../shared/schemas.ts";
import { z } from "../shared/zod.ts";

export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, where: "query" | "path" | "body" | "header"): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ApiError(400, "validation_failed", `invalid ${where} parameters`, { issues: zodIssues(result.error, [where]) });
  }
  return result.data;
}

const noParameters = z.strictObject({});

/** Routes that take no query parameters refuse unknown ones, as the others do (strict schemas). */
export function noQuery(query: Record<string, string>): void {
  parseOr400(noParameters, query, "query");
}

/** The tail of the URL path after `marker`, percent-decoded (so `%2F` and `/` both work). */
export function pathTail(url: string, marker: string): string {
  const pathname = new URL(url).pathname;
  const at = pathname.indexOf(marker);
  const raw = at < 0 ? "" : pathname.slice(at + marker.length);
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "bad_request", "the path is not valid percent-encoding");
  }
}
