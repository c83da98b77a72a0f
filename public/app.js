// nixdocs web UI: search as you type over /api/v1/search, option detail from /api/v1/namespaces/:ns/options/:name.
// All text from the API is inserted with textContent, except snippets, which the API HTML-escapes and marks.
"use strict";

const $ = (id) => document.getElementById(id);
const q = $("q"), nsSelect = $("namespace"), results = $("results"), detail = $("detail"), status = $("status");
let seq = 0, nextCursor = null, activeIndex = -1;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) if (c != null) node.append(c);
  return node;
}

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message ?? `HTTP ${res.status}`);
  return body;
}

async function loadNamespaces() {
  const { items } = await getJson("/api/v1/namespaces");
  for (const n of items) nsSelect.append(el("option", { value: n.namespace, textContent: `${n.namespace} (${n.options.toLocaleString()})` }));
  const params = new URLSearchParams(location.search);
  if (params.get("namespace")) nsSelect.value = params.get("namespace");
  if (params.get("q")) { q.value = params.get("q"); search(); }
  if (params.get("show") && params.get("ns")) showOption(params.get("ns"), params.get("show"));
}

function renderHit(hit, index) {
  const a = el("a", { className: "hit", href: `?ns=${encodeURIComponent(hit.namespace)}&show=${encodeURIComponent(hit.name)}` },
    el("div", {}, el("span", { className: "ns", textContent: hit.namespace }), el("span", { className: "name", textContent: hit.name })),
    el("div", { className: "type", textContent: `${hit.type} · ${hit.module}` }));
  // How a dotted query reached this option: the names it gave placeholders, the part below a freeform option.
  const how = [
    ...(hit.bindings ?? []).map((b) => `${b.placeholder} = ${b.value}`),
    ...(hit.rest?.length ? [`freeform: ${hit.rest.join(".")}`] : []),
    ...(hit.fuzzy ? ["typo-corrected"] : []),
  ];
  if (how.length) a.append(el("div", { className: "how", textContent: how.join(" · ") }));
  const snippet = el("div", { className: "snippet" });
  snippet.innerHTML = hit.snippet; // escaped by the API; only <mark> is markup
  a.append(snippet);
  a.addEventListener("click", (e) => { e.preventDefault(); setActive(index); showOption(hit.namespace, hit.name); });
  return a;
}

function setActive(i) {
  const hits = results.querySelectorAll(".hit");
  hits.forEach((h, j) => h.classList.toggle("active", j === i));
  activeIndex = i;
}

async function search(append = false) {
  const text = q.value.trim();
  const mine = ++seq;
  if (!text) { results.replaceChildren(); status.textContent = ""; return; }
  const params = new URLSearchParams({ q: text, limit: "30" });
  if (nsSelect.value) params.set("namespace", nsSelect.value);
  if (append && nextCursor) params.set("cursor", nextCursor);
  history.replaceState(null, "", `?${new URLSearchParams({ q: text, ...(nsSelect.value ? { namespace: nsSelect.value } : {}) })}`);
  try {
    const t0 = performance.now();
    const r = await getJson(`/api/v1/search?${params}`);
    if (mine !== seq) return;
    const offset = append ? results.querySelectorAll(".hit").length : 0;
    const nodes = r.hits.map((h, i) => renderHit(h, offset + i));
    if (!append) results.replaceChildren();
    results.querySelector(".more")?.remove();
    results.append(...nodes);
    nextCursor = r.nextCursor;
    if (nextCursor) {
      const more = el("button", { className: "more", textContent: "More results" });
      more.addEventListener("click", () => search(true));
      results.append(more);
    }
    const facets = Object.entries(r.facets.namespace).filter(([, n]) => n > 0).map(([n, c]) => `${n} ${c}`).join(" · ");
    const corrected = Object.entries(r.corrections ?? {}).map(([from, to]) => `${from} → ${to}`).join(", ");
    status.textContent = `${r.total.toLocaleString()} matches in ${Math.round(performance.now() - t0)} ms${corrected ? ` (read as: ${corrected})` : ""}${r.partial ? " (partial: some namespaces did not answer)" : ""}${facets ? ` — ${facets}` : ""}`;
    if (!append) activeIndex = -1;
  } catch (err) {
    if (mine === seq) { status.textContent = err.message; results.replaceChildren(); }
  }
}

function literal(value) {
  if (!value) return null;
  return el("pre", { textContent: value.text, title: value.kind === "expression" ? "Nix expression" : value.kind === "markdown" ? "Markdown" : "JSON value" });
}

async function showOption(namespace, name) {
  try {
    const o = await getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}/options/${encodeURIComponent(name)}`);
    const fields = [
      ["Type", el("code", { textContent: o.type })],
      ["Default", literal(o.default)],
      ["Example", literal(o.example)],
      ["Read-only", o.readOnly ? "yes" : null],
      ["Declared in", o.declarations.length ? el("span", {}, ...o.declarations.map((d) => el("div", { className: "name", textContent: d.path }))) : null],
      ["Module", el("a", { href: `/api/v1/namespaces/${encodeURIComponent(namespace)}/modules/${encodeURIComponent(o.module)}/versions`, textContent: o.module })],
      ["Related packages", o.relatedPackages],
    ];
    const dl = el("dl");
    for (const [k, v] of fields) if (v != null) dl.append(el("dt", { textContent: k }), el("dd", {}, v));
    detail.replaceChildren(
      el("div", {}, el("span", { className: "ns", textContent: namespace })),
      el("h2", { textContent: o.name }),
      el("div", { className: "desc", textContent: o.description || "No description." }),
      dl,
    );
    detail.hidden = false;
    history.replaceState(null, "", `?${new URLSearchParams({ ...(q.value ? { q: q.value } : {}), ns: namespace, show: name })}`);
  } catch (err) {
    detail.replaceChildren(el("p", { textContent: err.message }));
    detail.hidden = false;
  }
}

let timer;
q.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => search(), 120); });
nsSelect.addEventListener("change", () => search());
$("search").addEventListener("submit", (e) => { e.preventDefault(); search(); });
document.addEventListener("keydown", (e) => {
  const hits = results.querySelectorAll(".hit");
  if (!hits.length || (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "Enter")) return;
  if (e.key === "Enter" && document.activeElement !== q && activeIndex >= 0) { hits[activeIndex].click(); return; }
  if (e.key === "Enter") return;
  e.preventDefault();
  setActive(Math.max(0, Math.min(hits.length - 1, activeIndex + (e.key === "ArrowDown" ? 1 : -1))));
  hits[activeIndex].scrollIntoView({ block: "nearest" });
  hits[activeIndex].click();
});
loadNamespaces().catch((err) => { status.textContent = `Cannot reach the API: ${err.message}`; });
