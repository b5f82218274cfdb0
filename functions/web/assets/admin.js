/* The admin room (shown to admins only; the /admin routes answer 404 to anyone else): today's totals, account
   search with refill and suspend/resume, stuck and failed work with re-drive, and the audit log. */
"use strict";

(() => {
  const { $, el } = ImageClassifyDom;
  const { api, say, refreshBalance } = ImageClassifyConsole;
  const when = (seconds) => (seconds ? new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") : "–");

  function duration(seconds) {
    const s = Math.round(seconds);
    if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
    if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return s >= 60 ? `${Math.floor(s / 60)} min` : `${s} s`;
  }

  function button(text, label, action, secondary) {
    const node = el("button", { type: "button", text, "aria-label": label, className: secondary ? "secondary" : "" });
    node.addEventListener("click", action);
    return node;
  }

  const empty = (columns, text) => el("tr", {}, el("td", { colspan: columns, className: "empty", text }));

  async function act(statusId, work, done) {  // run an action, say how it went, then reload what it changed
    try {
      const text = await work();
      say(statusId, text, "ok");
    } catch (err) {
      say(statusId, err.message, "error");
    }
    await done();
  }

  async function loadTotals() {
    try {
      const { data } = await api("GET", "/admin/totals");
      $("total-accounts").textContent = String(data.accounts);
      $("total-images").textContent = String(data.images_classified);
      $("total-tokens").textContent = String(data.tokens_spent);
      say("admin-status", `UTC day ${data.day}.`);
    } catch (err) {
      say("admin-status", err.message, "error");
    }
  }

  function accountRow(a, typed) {
    const amount = el("input", { type: "number", min: 1, value: typed.get(a.username) ?? 100, className: "amount",
                                 "aria-label": `Tokens to add to ${a.username}` });
    const refill = button("Refill", `Refill ${a.username}`, () => act("accounts-status", async () => {
      const { data } = await api("POST", "/refill", { json: { username: a.username, amount: Number(amount.value) } });
      return `${a.username} now has ${data.tokens} tokens.`;
    }, refreshAll));
    const verb = a.suspended ? "resume" : "suspend";
    const toggle = button(a.suspended ? "Resume" : "Suspend", `${a.suspended ? "Resume" : "Suspend"} ${a.username}`,
      () => act("accounts-status", async () => {
        await api("POST", `/admin/accounts/${encodeURIComponent(a.username)}/${verb}`);
        return `${a.username} is ${a.suspended ? "resumed" : "suspended"}.`;
      }, refreshAll), !a.suspended);
    return el("tr", { "data-user": a.username }, el("th", { scope: "row", text: a.username }),
              el("td", { text: String(a.tokens) }),
              el("td", { text: a.suspended ? "suspended" : a.admin ? "admin" : "active" }),
              el("td", { text: when(a.last_active) }),
              el("td", {}, el("div", { className: "row nowrap" }, amount, refill)),
              el("td", {}, a.admin ? el("span", { text: "–" }) : toggle));
  }

  // a list answers only its newest request: a slower, older answer (the room's own refresh on entry) must not
  // replace rows the user is already typing into
  const newest = () => { let n = 0; return () => { const mine = ++n; return () => mine === n; }; };
  const accountsAsked = newest(), workAsked = newest();

  async function searchAccounts(event) {
    if (event) event.preventDefault();
    const current = accountsAsked();
    try {
      const q = $("account-query").value.trim();
      const { data } = await api("GET", `/admin/accounts?${new URLSearchParams({ q })}`);
      if (!current()) return;
      // an amount typed into a row survives the rows being drawn again (a search or refresh answering late)
      const body = $("account-list").tBodies[0];
      const typed = new Map(Array.from(body.querySelectorAll("tr[data-user]"),
                                       (tr) => [tr.dataset.user, tr.querySelector("input.amount").value]));
      body.replaceChildren(...(data.accounts.length ? data.accounts.map((a) => accountRow(a, typed))
                                                    : [empty(6, `No account begins with ${q}.`)]));
    } catch (err) {
      say("accounts-status", err.message, "error");
    }
  }

  async function loadWork(event) {
    if (event) event.preventDefault();
    const state = $("work-state").value;
    const current = workAsked();
    try {
      const { data } = await api("GET", `/admin/jobs?${new URLSearchParams({ state })}`);
      if (!current()) return;
      $("work-list").tBodies[0].replaceChildren(...data.jobs.map((w) => el("tr", { "data-id": w.id },
        el("td", { text: w.kind }), el("th", { scope: "row" }, el("code", { text: w.id })),
        el("td", { text: w.owner }), el("td", { text: w.status }),
        el("td", { text: `${w.done} of ${w.total} (${w.percentage} %)` }), el("td", { text: duration(w.idle_seconds) }),
        el("td", {}, state !== "stuck" ? el("span", { text: "–" }) : button("Re-drive", `Re-drive ${w.kind} ${w.id}`,
          () => act("work-status", async () => {
            const { data: done } = await api("POST", `/admin/jobs/${w.id.split("/").map(encodeURIComponent).join("/")}/redrive`);
            return `${done.kind} ${done.id}: ${done.published} message(s) published again.`;
          }, refreshAll))))));
      if (!data.jobs.length) $("work-list").tBodies[0].append(empty(7, state === "stuck" ? "Nothing is stuck." : "Nothing failed."));
    } catch (err) {
      say("work-status", err.message, "error");
    }
  }

  async function loadAudit() {
    try {
      const { data } = await api("GET", "/admin/audit");
      $("audit-list").tBodies[0].replaceChildren(...data.events.map((e) => el("tr", {},
        el("td", { text: when(e.at) }), el("td", { text: e.admin }), el("td", { text: e.action }),
        el("td", { text: e.target }))));
    } catch (err) {
      say("admin-status", err.message, "error");
    }
  }

  function refreshAll() {
    return Promise.all([loadTotals(), searchAccounts(), loadWork(), loadAudit()]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("account-search").addEventListener("submit", searchAccounts);
    $("work-form").addEventListener("submit", loadWork);
  });
  ImageClassifyConsole.room("admin", { enter: refreshAll });
})();
