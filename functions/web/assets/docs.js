/* Renders /openapi.json into /docs: operations grouped by tag, request forms, replies, schemas.
   Everything is inserted with textContent: the description is data, never markup. */
"use strict";

(() => {
  const { $, el } = ImageClassifyDom;  // dom.js
  const METHODS = ["get", "put", "post", "delete", "patch"];

  const refName = (ref) => ref.split("/").pop();
  const json = (value) => el("pre", { text: JSON.stringify(value, null, 2) });

  function schemaLine(schema) {
    if (!schema) return el("span", { text: "(no body)" });
    if (schema.$ref) return el("a", { href: `#schema-${refName(schema.$ref)}`, text: refName(schema.$ref) });
    return json(schema);
  }

  function responses(spec, op) {
    const list = el("dl");
    for (const [status, reply] of Object.entries(op.responses || {})) {
      const resolved = reply.$ref ? spec.components.responses[refName(reply.$ref)] : reply;
      const content = resolved.content || {};
      const dd = el("dd", { text: resolved.description || "" });
      for (const [media, body] of Object.entries(content)) dd.append(el("div", {}, `${media}: `, schemaLine(body.schema)));
      list.append(el("dt", { text: status === "default" ? "other statuses" : status }), dd);
    }
    return list;
  }

  function operation(spec, path, method, op) {
    const id = `op-${op.operationId}`;
    const card = el("section", { className: "card op", id, "aria-labelledby": `${id}-h` });
    card.append(el("h2", { id: `${id}-h` }, el("span", { className: "method", text: method }),
                   el("span", { className: "path", text: path })));
    card.append(el("p", { text: op.summary || "" }));
    const security = (op.security || []).flatMap((s) => Object.keys(s));
    card.append(el("p", { className: "hint", text: security.length ? `Authentication: ${security.join(" or ")}` : "No authentication." }));
    if (op.parameters) {
      card.append(el("h3", { text: "Parameters" }), el("ul", {}, ...op.parameters.map((p) =>
        el("li", { text: `${p.name} (${p.in}${p.required ? ", required" : ""})${p.description ? ": " + p.description : ""}` }))));
    }
    if (op.requestBody) {
      const forms = el("dl");
      for (const [media, body] of Object.entries(op.requestBody.content)) forms.append(el("dt", { text: media }), el("dd", {}, schemaLine(body.schema)));
      card.append(el("h3", { text: "Request body" }), forms);
    }
    card.append(el("h3", { text: "Replies" }), responses(spec, op));
    return card;
  }

  async function start() {
    let spec;
    try {
      const response = await fetch("/openapi.json", { cache: "no-store" });
      spec = await response.json();
    } catch (_) {
      $("docs-status").textContent = "The description could not be loaded. Open /openapi.json directly.";
      return;
    }
    $("title").textContent = `${spec.info.title} ${spec.info.version}`;
    $("description").textContent = spec.info.description || "";
    const ops = [];
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const method of METHODS) if (item[method]) ops.push([path, method, item[method]]);
    }
    const tags = [...new Set(ops.map(([, , op]) => (op.tags || ["other"])[0]))];
    for (const tag of tags) {
      const mine = ops.filter(([, , op]) => (op.tags || ["other"])[0] === tag);
      $("toc").append(el("li", {}, el("strong", { text: tag }), el("ul", {}, ...mine.map(([path, method, op]) =>
        el("li", {}, el("a", { href: `#op-${op.operationId}`, text: `${method.toUpperCase()} ${path}` }))))));
      for (const [path, method, op] of mine) $("operations").append(operation(spec, path, method, op));
    }
    for (const [name, schema] of Object.entries(spec.components.schemas)) {
      $("schemas").append(el("h3", { id: `schema-${name}`, text: name }), json(schema));
    }
    $("docs-status").textContent = `${ops.length} operations.`;
  }

  document.addEventListener("DOMContentLoaded", start);
})();
