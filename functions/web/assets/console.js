/* The ImageClassify web console: plain JS, no framework, no build step.
 *
 * Rules kept throughout: every text from the server or the user is inserted with
 * textContent (never parsed as HTML); the tab's session key (POST /sessions; never the
 * account's API key, which the CLI and scripts keep using) lives in sessionStorage only (never
 * in a URL, never logged) and is revoked at sign-out; each route is called at the base URL /config.json
 * gives for it (empty = this origin).
 *
 * The console has rooms (classify, sort, files, models, account, admin): one page, one room shown at a time,
 * chosen by the URL's hash (#/account), so a deep link survives a reload and the back button works. The
 * account and admin rooms live in account.js and admin.js, which register with `ImageClassifyConsole.room`.
 */
"use strict";

(() => {
  const KEY = "imageclassify.key";
  const USER = "imageclassify.user";
  const SESSION = "imageclassify.session";
  const FINAL_JOB = new Set(["done", "failed", "cancelled"]);
  const FINAL_MODEL = new Set(["ready", "failed"]);
  const ROOMS = ["classify", "sort", "files", "models", "account", "admin"];
  const state = { endpoints: {}, key: sessionStorage.getItem(KEY), user: sessionStorage.getItem(USER),
                  session: sessionStorage.getItem(SESSION), job: null, filesNext: null, confusionUrl: null,
                  admin: false, room: null };
  const rooms = {};  // name -> { enter() } registered by account.js and admin.js
  const { $, el } = ImageClassifyDom;  // dom.js

  /* -- small DOM helpers ------------------------------------------------------------ */

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text || "";
    node.dataset.kind = kind || "";
  }

  const percent = (fraction) => `${(100 * fraction).toFixed(1)} %`;
  const bytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* -- the API ------------------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function endpoint(path) {
    const group = path.replace(/^\//, "").split(/[/?]/)[0];
    return (state.endpoints[group] || "") + path;
  }

  function basic(username, password) {
    const raw = new TextEncoder().encode(`${username}:${password}`);
    return "Basic " + btoa(String.fromCharCode(...raw));
  }

  async function api(method, path, options = {}) {
    const headers = new Headers(options.headers || {});
    const auth = "auth" in options ? options.auth : state.key && `Bearer ${state.key}`;
    if (auth) headers.set("Authorization", auth);
    let body = options.body;
    if (options.json !== undefined) {
      headers.set("Content-Type", "application/json");
      body = JSON.stringify(options.json);
    }
    let response;
    try {
      response = await fetch(endpoint(path), { method, headers, body, credentials: "omit", cache: "no-store" });
    } catch (_) {
      throw new ApiError(0, "network", "The server could not be reached. Check the connection and retry.");
    }
    if (options.raw && response.ok) return response;
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const error = data && data.error;
      throw new ApiError(response.status, error ? error.code : `http_${response.status}`,
                         error && error.message ? error.message : `The server answered ${response.status}.`);
    }
    return { data, headers: response.headers };
  }

  const missing = (err) => err instanceof ApiError && err.status === 404 && err.code === "not_found";

  /* -- account and balance -------------------------------------------------------------- */

  function remember(session) {
    Object.assign(state, { key: session.key, user: session.username, session: session.id });
    sessionStorage.setItem(KEY, session.key);
    sessionStorage.setItem(USER, session.username);
    sessionStorage.setItem(SESSION, session.id);
  }

  function showApiKey(key) {
    $("api-key").textContent = key || "";
    $("key-box").hidden = !key;
  }

  async function account(event, signUp) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) {
      say("account-status", "Enter a username and a password.", "error");
      return;
    }
    say("account-status", signUp ? "Creating your account…" : "Signing in…");
    try {
      // sign-up shows the account's API key once; the tab itself always runs on a session key of its own
      const created = signUp ? (await api("POST", "/register", { json: { username, password }, auth: "" })).data
                             : null;
      const { data } = await api("POST", "/sessions", { auth: basic(username, password) });
      $("password").value = "";
      remember(data);
      showApiKey(created && created.api_key);
      say("account-status", signUp ? `Welcome, ${data.username}: your account has ${data.tokens} tokens.`
                                    : `Signed in as ${data.username}.`, "ok");
      await signedIn();
    } catch (err) {
      say("account-status", err.message, "error");
    }
  }

  async function refreshBalance() {
    try {
      const { data } = await api("GET", "/tokens");
      showBalance(data.tokens);
    } catch (err) {
      if (err.status === 401) signOut("Your session has ended (signed out or expired): sign in again.");
    }
  }

  function showBalance(tokens) {
    if (tokens !== undefined && tokens !== null) $("balance").textContent = String(tokens);
  }

  function enable(on) {
    for (const id of ["classify-controls", "job-controls", "files-controls", "train-controls", "key-controls",
                      "password-controls", "delete-controls"]) $(id).disabled = !on;
  }

  async function signedIn() {
    $("who").textContent = `Signed in as ${state.user}`;
    $("sign-out").hidden = false;
    $("account-form").hidden = true;
    $("account-h").textContent = "Your account";
    enable(true);
    await Promise.all([refreshBalance(), loadModels(), probeFiles(), probeAdmin()]);
    route(false);
  }

  async function probeAdmin() {  // the admin routes answer 404 to anyone else
    try {
      await api("GET", "/admin/totals");
      state.admin = true;
    } catch (_) {
      state.admin = false;
    }
    $("nav-admin").hidden = !state.admin;
  }

  function signOut(message) {
    if (state.session && state.key) {  // revoke the session key; the page forgets it whatever the answer
      api("DELETE", `/sessions/${encodeURIComponent(state.session)}`).catch(() => {});
    }
    for (const name of [KEY, USER, SESSION]) sessionStorage.removeItem(name);
    Object.assign(state, { key: null, user: null, session: null, job: null, admin: false });
    enable(false);
    $("nav-admin").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "Not signed in";
    $("balance").textContent = "–";
    $("sign-out").hidden = true;
    $("account-form").hidden = false;
    $("account-h").textContent = "Sign up or sign in";
    showApiKey(null);
    say("account-status", message || "Signed out.");
    route(false);
  }

  /* -- rooms ------------------------------------------------------------------------------ */

  function roomOf(hash) {
    const name = (hash || "").replace(/^#\/?/, "").split(/[/?]/)[0];
    return ROOMS.includes(name) ? name : "classify";
  }

  function note(text) {
    $("room-note").textContent = text || "";
    $("room-note").hidden = !text;
  }

  function route(moved) {
    const name = roomOf(location.hash);
    const signedIn = Boolean(state.key);
    const barred = name === "admin" ? (!signedIn || !state.admin) : name === "account" && !signedIn;
    for (const room of document.querySelectorAll(".room")) room.hidden = barred || room.dataset.room !== name;
    for (const link of document.querySelectorAll(".rooms a")) {
      if (link.dataset.room === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    note(!barred ? "" : signedIn ? "This page is for administrators." : "Sign in to see this page.");
    if (signedIn && $("key-box").hidden) $("signin").hidden = true;  // kept while it shows a new API key
    document.title = `${name[0].toUpperCase()}${name.slice(1)} · ImageClassify console`;
    state.room = name;
    if (moved) {
      showApiKey(null);
      $("signin").hidden = signedIn;
      const heading = barred ? $("room-note") : document.querySelector(`#room-${name} h2`);
      if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
    }
    if (!barred && signedIn && rooms[name]) rooms[name].enter();
  }

  /* -- classify ------------------------------------------------------------------------- */

  async function loadModels() {
    const select = $("model");
    try {
      const { data } = await api("GET", "/models");
      const models = (data && data.models) || [];
      const backbones = $("model-backbone");
      select.replaceChildren();
      backbones.replaceChildren();
      for (const model of models) {
        const info = typeof model === "string" ? { name: model } : model;
        const ready = !info.status || info.status === "ready";
        const kind = info.default ? " (built-in, default)" : " (built-in)";
        const note = info.builtin ? kind : ready ? "" : ` (${info.status})`;
        select.append(el("option", { value: info.name, text: `${info.name}${note}` }));
        if (!ready) select.lastChild.disabled = true;
        if (info.default) select.lastChild.selected = true;
        if (info.builtin) {  // a custom model learns from a built-in's features
          backbones.append(el("option", { value: info.name, text: `${info.name}${info.default ? " (default)" : ""}` }));
          if (info.default) backbones.lastChild.selected = true;
        }
      }
      if (!backbones.options.length) backbones.append(el("option", { value: "", text: "efficientnet_lite0 (default)" }));
      listModels(models.filter((m) => typeof m === "object" && !m.builtin));
      if (!select.options.length) select.append(el("option", { value: "", text: "Built-in (ImageNet, 1000 classes)" }));
      $("train-controls").disabled = false;
    } catch (err) {
      if (missing(err)) {  // this server has no custom models yet: the built-in model only
        $("train-controls").disabled = true;
        say("train-status", "Custom models are not available on this server yet.");
      }
    }
  }

  function resultCard(name, preview) {
    const card = el("li", { className: "result" });
    if (preview) {  // a browser that cannot show the format (HEIC outside Safari) shows no preview, not a broken one
      const img = el("img", { src: preview, alt: `Preview of ${name}`, className: "preview" });
      img.addEventListener("error", () => img.remove());
      card.append(img);
    }
    const body = el("div", { className: "result-body" }, el("p", { className: "name", text: name }),
                    el("p", { className: "status", role: "status", text: "Classifying…" }));
    card.append(body);
    $("results").prepend(card);
    return body;
  }

  function showPredictions(body, data) {
    const list = el("ul", { className: "bars" });
    for (const p of data.predictions || []) {
      const meter = el("meter", { min: 0, max: 1, value: p.score, "aria-label": p.label });
      list.append(el("li", {}, el("span", { className: "label", text: p.label }), meter,
                     el("span", { className: "score", text: percent(p.score) })));
    }
    body.querySelector(".status").textContent = data.model ? `Model: ${data.model}` : "";
    body.append(list);
    showBalance(data.tokens_remaining);
  }

  async function classifyOne(body, request) {
    try {
      const { data } = await api("POST", "/classify", { ...request, headers: { "Idempotency-Key": uuid() } });
      showPredictions(body, data);
    } catch (err) {
      const status = body.querySelector(".status");
      status.textContent = err.message;
      status.dataset.kind = "error";
      if (err.status === 402) refreshBalance();
    }
  }

  function options() {
    const model = $("model").value;
    return model ? { model } : {};
  }

  async function classifyFiles(files) {
    const list = Array.from(files);
    if (!list.length) return;
    say("classify-status", `Classifying ${list.length} image${list.length > 1 ? "s" : ""}…`);
    const queue = list.map((file) => () => {
      const body = resultCard(file.name, file.type.startsWith("image/") ? URL.createObjectURL(file) : null);
      const form = new FormData();
      form.append("file", file, file.name);
      for (const [name, value] of Object.entries(options())) form.append(name, value);
      return classifyOne(body, { body: form });
    });
    const workers = Array.from({ length: Math.min(3, queue.length) }, async () => {
      while (queue.length) await queue.shift()();
    });
    await Promise.all(workers);
    say("classify-status", "Done.", "ok");
  }

  async function classifyUrl(event) {
    event.preventDefault();
    const url = $("image-url").value.trim();
    if (!url) return;
    say("classify-status", "Classifying 1 image…");
    await classifyOne(resultCard(url, null), { json: { url, ...options() } });
    say("classify-status", "Done.", "ok");
  }

  /* -- sort jobs ------------------------------------------------------------------------ */

  function showJob(job) {
    $("job-view").hidden = false;
    $("job-progress").value = job.percentage || 0;
    $("job-label").textContent =
      `Job ${job.id.slice(0, 8)}: ${job.status}, ${job.processed} of ${job.total} images (${(job.percentage || 0).toFixed(0)} %)` +
      (job.ended ? `, in ${Math.max(0, job.ended - job.created).toFixed(1)} s` : "");
    const rows = Object.entries(job.matched || {}).map(([name, n]) => [name, n]);
    rows.push(["unmatched", job.unmatched], ["failed", job.failed]);
    if (job.not_written) rows.push(["not written (a file of yours in the way)", job.not_written]);
    $("job-counts").tBodies[0].replaceChildren(
      ...rows.map(([name, n]) => el("tr", {}, el("th", { scope: "row", text: name }), el("td", { text: String(n) }))));
    $("job-cancel").hidden = FINAL_JOB.has(job.status);
  }

  async function startJob(event) {
    event.preventDefault();
    const classes = $("job-classes").value.split(",").map((c) => c.trim()).filter(Boolean);
    const body = { classes, source: $("job-source").value.trim() || "all/" };
    const min = $("job-min").value;
    if (min !== "") body.min_score = Number(min);
    const model = $("model").value;
    if (model) body.model = model;
    say("job-status", "Starting…");
    try {
      const { data } = await api("POST", "/jobs", { json: body });
      state.job = data.id;
      showJob(data);
      refreshBalance();
      say("job-status", "Sorting…");
      await followJob(data.id);
    } catch (err) {
      say("job-status", err.message, "error");
    }
  }

  async function followJob(id) {
    while (state.job === id) {
      const { data } = await api("GET", `/jobs/${encodeURIComponent(id)}`);
      showJob(data);
      if (FINAL_JOB.has(data.status)) {
        say("job-status", `Job ${data.status}.`, data.status === "done" ? "ok" : "error");
        refreshBalance();
        return;
      }
      await sleep(500);
    }
  }

  async function cancelJob() {
    if (!state.job) return;
    try {
      const { data } = await api("DELETE", `/jobs/${encodeURIComponent(state.job)}`);
      showJob(data);
    } catch (err) {
      say("job-status", err.message, "error");
    }
  }

  /* -- files ------------------------------------------------------------------------------ */

  async function probeFiles() {
    try {
      await listFiles(null, "");
    } catch (err) {
      if (missing(err)) {
        $("files-controls").disabled = true;
        say("files-status", "File storage is not available on this server yet.");
      }
    }
  }

  async function listFiles(event, prefix) {
    if (event) event.preventDefault();
    const more = prefix === undefined;
    const query = new URLSearchParams({ prefix: more ? state.filesPrefix : ($("browse-prefix").value.trim()) });
    if (more && state.filesNext) query.set("next", state.filesNext);
    const { data } = await api("GET", `/files?${query}`);
    state.filesPrefix = query.get("prefix");
    state.filesNext = data.next || null;
    const rows = (data.files || []).map((f) =>
      el("tr", {}, el("td", { text: f.path }), el("td", { text: bytes(f.size) })));
    const body = $("file-list").tBodies[0];
    if (more) body.append(...rows); else body.replaceChildren(...rows);
    $("file-list").hidden = false;
    $("files-more").hidden = !state.filesNext;
    say("files-status", body.rows.length ? "" : "No files in this folder yet.");
  }

  async function browse(event, prefix) {
    try {
      await listFiles(event, prefix);
    } catch (err) {
      say("files-status", err.message, "error");
    }
  }

  function entryFiles(entry, path) {  // a dropped folder, walked (class subfolders kept in the path)
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((file) => resolve([{ file, path: path + file.name }]), () => resolve([]));
        return;
      }
      const reader = entry.createReader();
      const found = [];
      const next = () => reader.readEntries(async (entries) => {
        if (!entries.length) { resolve(found); return; }
        for (const child of entries) found.push(...await entryFiles(child, `${path}${entry.name}/`));
        next();
      }, () => resolve(found));
      next();
    });
  }

  async function upload(items) {
    const prefix = $("upload-prefix").value.trim().replace(/^\/+/, "");
    const files = items.filter((i) => !i.path.split("/").some((part) => part.startsWith(".")));
    if (!files.length) { say("files-status", "No files to upload in that folder.", "error"); return; }
    const bar = $("upload-progress");
    bar.hidden = $("upload-label").hidden = false;
    let done = 0;
    const failed = [];
    for (const { file, path } of files) {
      const target = (prefix && !prefix.endsWith("/") ? `${prefix}/` : prefix) + path;
      $("upload-label").textContent = `Uploading ${done + 1} of ${files.length}: ${target}`;
      try {
        await api("PUT", `/files/${target.split("/").map(encodeURIComponent).join("/")}`,
                  { body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
      } catch (err) {
        failed.push(`${target}: ${err.message}`);
        if (missing(err) || err.status === 403) break;
      }
      done += 1;
      bar.value = (100 * done) / files.length;
    }
    $("upload-label").textContent = `Uploaded ${done - failed.length} of ${files.length} files.`;
    await browse(null, "");  // the listing first: it clears the status line, which then says how it went
    say("files-status", failed.length ? failed.join("\n") : "Upload complete.", failed.length ? "error" : "ok");
  }

  /* -- custom models ------------------------------------------------------------------------ */

  async function train(event) {
    event.preventDefault();
    const name = $("model-name").value.trim();
    const source = $("model-source").value.trim();
    say("train-status", "Starting…");
    try {
      const backbone = $("model-backbone").value;
      await api("POST", "/models", { json: { name, source, ...(backbone ? { backbone } : {}) } });
      refreshBalance();
      say("train-status", "Training…");
      await followModel(name);
    } catch (err) {
      say("train-status", err.message, "error");
    }
  }

  async function followModel(name) {
    $("train-view").hidden = false;
    $("metrics").hidden = true;
    for (;;) {
      const { data } = await api("GET", `/models/${encodeURIComponent(name)}`);
      const progress = data.progress || {};
      $("train-progress").value = data.status === "ready" ? 100 : progress.percentage || 0;
      $("train-label").textContent = `Model ${data.name}: ${data.status}` +
        (progress.total ? `, ${progress.done} of ${progress.total} images` : "");
      if (FINAL_MODEL.has(data.status)) {
        if (data.status === "ready") await showMetrics(data);
        say("train-status", data.status === "ready" ? "Ready: pick it in the model list above."
                                                    : data.error || "Training failed.", data.status === "ready" ? "ok" : "error");
        refreshBalance();
        loadModels();
        return;
      }
      await sleep(800);
    }
  }

  function listModels(models) {
    const fixed = (x) => (typeof x === "number" ? x.toFixed(3) : "–");
    $("model-list").tBodies[0].replaceChildren(...models.map((m) => {
      const open = el("button", { type: "button", className: "link", text: m.name });
      open.addEventListener("click", () => openModel(m.name));
      return el("tr", {}, el("th", { scope: "row" }, open), el("td", { text: m.status }),
                el("td", { text: typeof m.accuracy === "number" ? percent(m.accuracy) : "–" }),
                el("td", { text: fixed(m.macro_f1) }), el("td", { text: String(m.images ?? "–") }),
                el("td", { text: m.backbone || "–" }));
    }));
    say("model-list-status", models.length ? "" : "No models of your own yet: train one below.");
  }

  async function openModel(name) {
    try {
      const { data } = await api("GET", `/models/${encodeURIComponent(name)}`);
      $("train-view").hidden = false;
      $("train-progress").value = data.status === "ready" ? 100 : (data.progress || {}).percentage || 0;
      $("train-label").textContent = `Model ${data.name}: ${data.status}`;
      if (data.status === "ready") await showMetrics(data);
      else $("metrics").hidden = true;
      $("train-view").scrollIntoView({ block: "nearest" });
    } catch (err) {
      say("model-list-status", err.message, "error");
    }
  }

  async function showMetrics(model) {
    const m = model.metrics || {};
    const fixed = (x) => (typeof x === "number" ? x.toFixed(3) : "–");
    $("metrics-summary").textContent = `Accuracy ${percent(m.accuracy || 0)}, macro F1 ${fixed(m.macro_f1)}` +
      (model.split ? ` (train ${model.split.train}, validation ${model.split.validation}, test ${model.split.test})` : "");
    $("metrics-table").tBodies[0].replaceChildren(...Object.entries(m.per_class || {}).map(([label, r]) =>
      el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: fixed(r.precision) }),
         el("td", { text: fixed(r.recall) }), el("td", { text: fixed(r.f1) }),
         el("td", { text: String(r.support ?? "–") }), el("td", { text: fixed(r.roc_auc) }))));
    $("metrics").hidden = false;
    try {
      const response = await api("GET", `/models/${encodeURIComponent(model.name)}/confusion.png`, { raw: true });
      if (state.confusionUrl) URL.revokeObjectURL(state.confusionUrl);
      state.confusionUrl = URL.createObjectURL(await response.blob());
      $("confusion").src = state.confusionUrl;
    } catch (err) {
      say("train-status", err.message, "error");
    }
  }

  /* -- wiring --------------------------------------------------------------------------------- */

  function dropZone(id, onDrop) {
    const zone = $(id);
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (!zone.closest("fieldset").disabled) onDrop(e.dataTransfer);
    });
  }

  async function droppedFolder(transfer) {
    const entries = Array.from(transfer.items || []).map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
    const found = [];
    for (const entry of entries) found.push(...await entryFiles(entry, ""));
    await upload(found);
  }

  async function start() {
    try {
      const response = await fetch("/config.json", { cache: "no-store" });
      if (response.ok) state.endpoints = (await response.json()).endpoints || {};
    } catch (_) { /* same origin for every route */ }
    $("account-form").addEventListener("submit", (e) => account(e, false));
    $("sign-up").addEventListener("click", (e) => account(e, true));
    $("sign-out").addEventListener("click", () => signOut());
    $("files").addEventListener("change", (e) => { classifyFiles(e.target.files); e.target.value = ""; });
    dropZone("drop", (t) => classifyFiles(t.files));
    $("url-form").addEventListener("submit", classifyUrl);
    $("job-form").addEventListener("submit", startJob);
    $("job-cancel").addEventListener("click", cancelJob);
    $("folder-input").addEventListener("change", (e) => {
      upload(Array.from(e.target.files, (file) => ({ file, path: file.webkitRelativePath || file.name })));
      e.target.value = "";
    });
    dropZone("folder-drop", droppedFolder);
    $("browse-form").addEventListener("submit", (e) => browse(e, $("browse-prefix").value));
    $("files-more").addEventListener("click", () => browse(null, undefined));
    $("train-form").addEventListener("submit", train);
    window.addEventListener("hashchange", () => route(true));
    route(false);
    document.body.dataset.ready = "true";  // every control answers from here on (the tests wait for it)
    if (state.key && state.user) {
      await signedIn();
    }
  }

  // what account.js and admin.js share with this script
  window.ImageClassifyConsole = Object.freeze({
    api, say, state, percent, refreshBalance, signOut,
    room(name, handlers) { rooms[name] = handlers; },
  });

  document.addEventListener("DOMContentLoaded", start);
})();
