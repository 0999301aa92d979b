// The developer portal's renderer: reads ./openapi.json (OpenAPI 3.1) and builds the
// page with DOM calls only. Every string from the document reaches the page through
// textContent or an attribute, never as markup (no HTML-parsing sink; the CSP also
// requires Trusted Types, so a markup sink would throw). Only local references
// (#/components/...) are followed; the document is the bank's own.
"use strict";

(function () {
  const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  // A tiny subset of Markdown, enough for the document's descriptions: paragraphs,
  // `code` and **bold**. Text stays text.
  function inline(text) {
    const out = document.createDocumentFragment();
    const pattern = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      if (match.index > last) out.append(text.slice(last, match.index));
      out.append(match[1] !== undefined ? el("code", {}, match[1]) : el("strong", {}, match[2]));
      last = match.index + match[0].length;
    }
    if (last < text.length) out.append(text.slice(last));
    return out;
  }

  function prose(text) {
    const box = el("div", { class: "prose" });
    if (typeof text !== "string") return box;
    for (const para of text.split(/\n\s*\n/)) {
      if (para.trim()) box.append(el("p", {}, inline(para.replace(/\s*\n\s*/g, " ").trim())));
    }
    return box;
  }

  function pointer(doc, ref) {
    if (typeof ref !== "string" || !ref.startsWith("#/")) return undefined;
    let node = doc;
    for (const raw of ref.slice(2).split("/")) {
      const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
      if (node === null || typeof node !== "object" || !Object.hasOwn(node, key)) return undefined;
      node = node[key];
    }
    return node;
  }

  function resolve(doc, value) {
    for (let hops = 0; value && typeof value === "object" && "$ref" in value && hops < 8; hops++) {
      value = pointer(doc, value.$ref);
    }
    return value || {};
  }

  function refName(ref) {
    return ref.slice(ref.lastIndexOf("/") + 1);
  }

  function typeLabel(schema) {
    if (!schema || typeof schema !== "object") return el("span", {}, "any");
    if (schema.$ref) {
      const name = refName(schema.$ref);
      return el("a", { href: "#schema-" + name, class: "ref" }, name);
    }
    if ("const" in schema) return el("code", {}, JSON.stringify(schema.const));
    if (Array.isArray(schema.enum)) {
      const span = el("span", { class: "enum" });
      schema.enum.forEach((value, i) => {
        if (i) span.append(" | ");
        span.append(el("code", {}, JSON.stringify(value)));
      });
      return span;
    }
    for (const key of ["anyOf", "oneOf", "allOf"]) {
      if (Array.isArray(schema[key])) {
        const span = el("span", {}, key + " ");
        schema[key].forEach((part, i) => {
          if (i) span.append(key === "allOf" ? " & " : " | ");
          span.append(typeLabel(part));
        });
        return span;
      }
    }
    if (schema.type === "array") return el("span", {}, "array of ", typeLabel(schema.items));
    const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "any";
    return el("span", {}, schema.format ? `${type} (${schema.format})` : type);
  }

  function constraints(schema) {
    const parts = [];
    for (const key of ["pattern", "minimum", "maximum", "minLength", "maxLength", "minItems",
      "maxItems", "default"]) {
      if (schema && key in schema) parts.push(`${key} ${JSON.stringify(schema[key])}`);
    }
    if (schema && schema.uniqueItems) parts.push("unique items");
    return parts.length ? el("div", { class: "constraints" }, parts.join(", ")) : null;
  }

  // An object schema as a table of its properties; nested inline objects expand
  // (a few levels), named schemas stay links to their own section.
  function schemaView(doc, schema, depth) {
    const box = el("div", { class: "schema" });
    if (!schema || typeof schema !== "object") return box;
    const head = el("div", { class: "schema-type" }, typeLabel(schema));
    box.append(head);
    const target = schema.$ref ? null : schema.type === "array" ? schema.items : schema;
    if (!target || target.$ref || !target.properties || depth > 3) {
      if (schema.description && !schema.$ref) box.append(prose(schema.description));
      return box;
    }
    if (target !== schema && schema.description) box.append(prose(schema.description));
    if (target.description) box.append(prose(target.description));
    const required = new Set(target.required || []);
    const rows = el("tbody");
    for (const [name, prop] of Object.entries(target.properties)) {
      const cell = el("td", {}, typeLabel(prop), constraints(prop));
      if (prop && prop.description) cell.append(prose(prop.description));
      const nested = prop && (prop.type === "object" ? prop : prop.type === "array" ? prop.items : null);
      if (nested && !nested.$ref && nested.properties) cell.append(schemaView(doc, nested, depth + 1));
      rows.append(el("tr", {},
        el("td", { class: "field" }, el("code", {}, name), required.has(name) ? el("span", { class: "req", title: "required" }, " *") : null),
        cell));
    }
    box.append(el("table", { class: "props" }, el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "type"))), rows));
    return box;
  }

  function examples(media) {
    const box = el("div", { class: "examples" });
    const entries = Object.entries(media.examples || {});
    if ("example" in media) entries.push(["example", { value: media.example }]);
    for (const [name, example] of entries) {
      box.append(el("details", {},
        el("summary", {}, "Example: " + (example.summary || name)),
        el("pre", {}, JSON.stringify(example.value, null, 2))));
    }
    return box;
  }

  function content(doc, body) {
    const box = el("div", { class: "content" });
    for (const [type, media] of Object.entries(body.content || {})) {
      box.append(el("div", { class: "media" }, el("code", {}, type)), schemaView(doc, media.schema, 0), examples(media));
    }
    return box;
  }

  function parameterTable(doc, params) {
    const rows = el("tbody");
    for (const raw of params) {
      const p = resolve(doc, raw);
      rows.append(el("tr", {},
        el("td", { class: "field" }, el("code", {}, p.name || "?"), p.required ? el("span", { class: "req", title: "required" }, " *") : null),
        el("td", {}, p.in || ""),
        el("td", {}, typeLabel(p.schema), constraints(p.schema), prose(p.description))));
    }
    return el("table", { class: "params" },
      el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "description"))), rows);
  }

  function securityView(doc, requirements) {
    const box = el("div", { class: "security" }, el("h4", {}, "Authorisation"));
    for (const requirement of requirements || []) {
      const list = el("ul");
      for (const [scheme, scopes] of Object.entries(requirement)) {
        const item = el("li", {}, el("a", { href: "#security-" + scheme }, scheme));
        if (scopes.length) {
          item.append(" with scope ");
          scopes.forEach((scope, i) => { if (i) item.append(", "); item.append(el("code", { class: "scope" }, scope)); });
        }
        list.append(item);
      }
      box.append(list);
    }
    return box;
  }

  function serverLine(servers) {
    return (servers || []).map((s) => s.url + (s.description ? ` (${s.description})` : "")).join("; ");
  }

  function responseView(doc, status, raw) {
    const r = resolve(doc, raw);
    const box = el("div", { class: "response" },
      el("h5", {}, el("span", { class: "status s" + String(status)[0] }, status)), prose(r.description));
    const headers = Object.entries(r.headers || {});
    if (headers.length) {
      const list = el("ul", { class: "headers" });
      for (const [name, h] of headers) {
        const header = resolve(doc, h);
        list.append(el("li", {}, el("code", {}, name), header.required ? " (always)" : "", " ", inline(header.description || "")));
      }
      box.append(list);
    }
    if (r.content) box.append(content(doc, r));
    return box;
  }

  function operationView(doc, path, method, op, pathItem) {
    const id = "op-" + (op.operationId || method + path);
    const section = el("section", { class: "operation", id: id },
      el("h3", {}, el("span", { class: "method m-" + method }, method.toUpperCase()), " ", el("code", { class: "path" }, path)),
      el("p", { class: "summary" }, op.summary || ""),
      op.operationId ? el("p", { class: "opid" }, "operationId ", el("code", {}, op.operationId)) : null,
      prose(op.description));
    const servers = op.servers || pathItem.servers;
    if (servers) section.append(el("p", { class: "servers" }, "Served by: " + serverLine(servers)));
    section.append(securityView(doc, op.security || doc.security));
    const params = [...(pathItem.parameters || []), ...(op.parameters || [])];
    if (params.length) section.append(el("h4", {}, "Parameters"), parameterTable(doc, params));
    if (op.requestBody) {
      const body = resolve(doc, op.requestBody);
      section.append(el("h4", {}, "Request body"), prose(body.description), content(doc, body));
    }
    section.append(el("h4", {}, "Responses"));
    for (const [status, r] of Object.entries(op.responses || {})) section.append(responseView(doc, status, r));
    return section;
  }

  function securitySchemes(doc) {
    const section = el("section", { id: "security" }, el("h2", {}, "Security"));
    for (const [name, raw] of Object.entries((doc.components || {}).securitySchemes || {})) {
      const scheme = resolve(doc, raw);
      const box = el("div", { class: "scheme", id: "security-" + name },
        el("h3", {}, name, " ", el("span", { class: "kind" }, scheme.type || "")), prose(scheme.description));
      for (const [flowName, flow] of Object.entries(scheme.flows || {})) {
        box.append(el("p", {}, "Flow ", el("code", {}, flowName), flow.tokenUrl ? ", token endpoint " : "", flow.tokenUrl ? el("code", {}, flow.tokenUrl) : null));
        const rows = el("tbody");
        for (const [scope, text] of Object.entries(flow.scopes || {})) {
          rows.append(el("tr", {}, el("td", {}, el("code", { class: "scope" }, scope)), el("td", {}, text)));
        }
        box.append(el("table", { class: "scopes" }, el("thead", {}, el("tr", {}, el("th", {}, "scope"), el("th", {}, "grants"))), rows));
      }
      section.append(box);
    }
    return section;
  }

  function schemasSection(doc) {
    const section = el("section", { id: "schemas" }, el("h2", {}, "Schemas"));
    for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
      section.append(el("div", { class: "named-schema", id: "schema-" + name }, el("h3", {}, name), schemaView(doc, schema, 0)));
    }
    return section;
  }

  function render(doc) {
    const info = doc.info || {};
    const nav = el("nav", { "aria-label": "operations" });
    const main = el("main");
    main.append(el("header", {},
      el("h1", {}, info.title || "API"),
      el("p", { class: "version" }, `version ${info.version || "?"} · OpenAPI ${doc.openapi || "?"} · `,
        el("a", { href: "openapi.json", download: "openapi.json" }, "openapi.json")),
      info.summary ? el("p", { class: "lead" }, info.summary) : null,
      prose(info.description),
      el("p", { class: "servers" }, "Servers: " + serverLine(doc.servers))));

    const tags = (doc.tags || []).map((t) => t.name);
    const byTag = new Map(tags.map((t) => [t, []]));
    for (const [path, pathItem] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = pathItem[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "Other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push([path, method, op, pathItem]);
      }
    }
    for (const [tag, ops] of byTag) {
      const tagInfo = (doc.tags || []).find((t) => t.name === tag) || {};
      const section = el("section", { class: "tag", id: "tag-" + tag }, el("h2", {}, tag), prose(tagInfo.description));
      const list = el("ul");
      for (const [path, method, op, pathItem] of ops) {
        section.append(operationView(doc, path, method, op, pathItem));
        list.append(el("li", {}, el("a", { href: "#op-" + (op.operationId || method + path) },
          el("span", { class: "method m-" + method }, method.toUpperCase()), " ", op.summary || path)));
      }
      nav.append(el("h2", {}, tag), list);
      main.append(section);
    }
    nav.append(el("h2", {}, "Reference"), el("ul", {},
      el("li", {}, el("a", { href: "#security" }, "Security")),
      el("li", {}, el("a", { href: "#schemas" }, "Schemas"))));
    main.append(securitySchemes(doc), schemasSection(doc));
    document.title = info.title || document.title;
    document.getElementById("portal").replaceChildren(nav, main);
  }

  async function load() {
    const status = document.getElementById("status");
    try {
      const response = await fetch("openapi.json", { credentials: "omit", cache: "no-cache" });
      if (!response.ok) throw new Error(`openapi.json: HTTP ${response.status}`);
      render(await response.json());
      document.body.dataset.state = "ready";
    } catch (err) {
      status.textContent = "The API description could not be loaded: " + err.message;
      document.body.dataset.state = "error";
    }
  }

  document.addEventListener("DOMContentLoaded", load);
})();
