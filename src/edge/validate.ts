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

/**
 * What follows `/api/v1/namespaces/<ns>/<section>/` in the URL path, percent-decoded (so `%2F` and
 * `/` both work). Found by segments, not by searching for the decoded namespace, so an encoded
 * namespace (`home%2Dmanager`) reaches the same resource.
 */
export function namespaceTail(url: string, section: "modules" | "options"): string {
  const segments = new URL(url).pathname.split("/");
  const at = segments.indexOf("namespaces");
  const raw = at >= 0 && segments[at + 2] === section ? segments.slice(at + 3).join("/") : "";
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "bad_request", "the path is not valid percent-encoding");
  }
}
