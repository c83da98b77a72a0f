/**
 * The live endpoint, `/parties/live-room/<room>`, routed by partyserver. Before a socket reaches
 * a room the edge checks what a room cannot cheaply refuse: that the party is the live room (the
 * router maps every Durable Object binding), that the room name is canonical and its namespace
 * exists, and the query (`format`, `since`, nothing unknown). Refusals use the API's error
 * envelope and carry an `X-Request-Id`, as the API's answers do; other parties are left to the
 * API's 404.
 * @module
 */
import { routePartykitRequest, type Lobby } from "partyserver";
import { ApiError } from "../shared/errors.ts";
import { connectQuery, LIVE_PARTY, parseRoomName } from "../shared/live.ts";
import { zodIssues } from "../shared/schemas.ts";
import { requireNamespace } from "./registry.ts";
import { rateVerdict, type RateVerdict } from "./middleware/rateLimit.ts";
import { serviceConfig } from "./config.ts";

type Refuse = (err: ApiError, headers?: Record<string, string>) => Response;

async function admit(request: Request, lobby: Lobby<Cloudflare.Env>, env: Env, refuse: Refuse): Promise<Response | void> {
  if (lobby.className !== "LIVE_ROOM") return refuse(new ApiError(404, "not_found", `no route for ${new URL(request.url).pathname}`));
  // Connects are limited like API reads (per IP, then the shared buckets), before any lookup.
  let verdict: RateVerdict;
  try {
    verdict = await rateVerdict(env, { method: "GET", path: new URL(request.url).pathname, headers: request.headers }, serviceConfig(env).rateLimits);
  } catch (err) {
    if (err instanceof ApiError) return refuse(err);
    throw err;
  }
  if (verdict.refused) return refuse(verdict.refused, verdict.headers);
  const room = parseRoomName(lobby.name);
  // The router reads one segment; `module:ns:a/b.nix` must not silently become the room of `a`.
  const segments = new URL(request.url).pathname.split("/").filter(Boolean);
  if (!room || segments.length !== 3) {
    return refuse(new ApiError(400, "bad_request", "a room is ns:<namespace> or module:<namespace>:<module path, URL-encoded, slashes as %2F>", { room: lobby.name.slice(0, 200) }));
  }
  const query = connectQuery.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!query.success) return refuse(new ApiError(400, "validation_failed", "invalid query parameters", { issues: zodIssues(query.error, ["query"]) }));
  try {
    await requireNamespace(env, room.namespace);
  } catch (err) {
    if (err instanceof ApiError) return refuse(err);
    throw err;
  }
}

/** The room's answer for `/parties/live-room/…` requests, or null for every other path (the API answers those). */
export async function routeLive(request: Request, env: Env): Promise<Response | null> {
  // partyserver maps every Durable Object binding to a party and answers a name it does not know
  // in plain text; only the live room is public, and anything else is the API's 404.
  if (new URL(request.url).pathname.split("/").filter(Boolean)[1] !== LIVE_PARTY) return null;
  const requestId = crypto.randomUUID();
  const refuse: Refuse = (err, headers) => Response.json(err.toBody(), { status: err.status, headers: { ...headers, "X-Request-Id": requestId } });
  // partyserver is typed over Cloudflare.Env, which tests extend with bindings `Env` lacks.
  return routePartykitRequest<Cloudflare.Env>(request, env as Cloudflare.Env, {
    onBeforeConnect: (req, lobby) => admit(req, lobby, env, refuse),
    onBeforeRequest: (req, lobby) =>
      lobby.className === "LIVE_ROOM"
        ? refuse(new ApiError(426, "upgrade_required", "live rooms speak WebSocket: send `Upgrade: websocket`"), { Upgrade: "websocket" })
        : refuse(new ApiError(404, "not_found", `no route for ${new URL(req.url).pathname}`)),
  });
}
