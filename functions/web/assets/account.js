/* The account room: API keys (create with the secret shown once, list, revoke), the last 30 days of spending
   (chart and table), password change, account deletion. Routes: POST/GET /keys, DELETE /keys/<id>,
   POST /password, DELETE /account, GET /usage. Every text from the server goes in as text. */
"use strict";

(() => {
  const { $, el } = ImageClassifyDom;
  const { api, say, state, signOut } = ImageClassifyConsole;
  const DAY = 86400000;
  const date = (seconds) => (seconds ? new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") : "never");
  const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

  async function loadKeys() {
    try {
      const { data } = await api("GET", "/keys");
      $("key-list").tBodies[0].replaceChildren(...(data.keys || []).map((k) => {
        const revoke = el("button", { type: "button", className: "secondary", text: "Revoke",
                                      "aria-label": `Revoke the key ${k.name}` });
        revoke.addEventListener("click", () => revokeKey(k));
        return el("tr", {}, el("th", { scope: "row", text: k.name }), el("td", {}, el("code", { text: k.prefix })),
                  el("td", { text: k.scope }), el("td", { text: date(k.created) }),
                  el("td", { text: date(k.last_used) }), el("td", {}, revoke));
      }));
      say("keys-status", "");
    } catch (err) {
      say("keys-status", err.message, "error");
    }
  }

  async function createKey(event) {
    event.preventDefault();
    const name = $("key-name").value.trim();
    if (!name) { say("keys-status", "Name the key (for example the machine that will use it).", "error"); return; }
    try {
      const { data } = await api("POST", "/keys", { json: { name, scope: $("key-scope").value } });
      $("new-key-value").textContent = data.key;
      $("new-key").hidden = false;
      $("key-name").value = "";
      await loadKeys();  // it clears the status line: say what happened after it
      say("keys-status", `Key ${data.name} created.`, "ok");
    } catch (err) {
      say("keys-status", err.message, "error");
    }
  }

  async function revokeKey(key) {
    let said = [`Key ${key.name} revoked.`, "ok"];
    try {
      await api("DELETE", `/keys/${encodeURIComponent(key.id)}`);
    } catch (err) {
      said = [err.message, "error"];
    }
    await loadKeys();  // it clears the status line: say what happened after it
    say("keys-status", ...said);
  }

  async function loadUsage() {
    const to = Date.now();
    const days = Array.from({ length: 30 }, (_, i) => isoDay(to - (29 - i) * DAY));
    try {
      const { data } = await api("GET", `/usage?${new URLSearchParams({ from: days[0], to: days[29], group: "day" })}`);
      const byDay = new Map((data.usage || []).map((u) => [u.day, u]));
      const rows = days.map((day) => byDay.get(day) || { day, spent: 0, refunded: 0, images: 0 });
      ImageClassifyChart.bars($("usage-chart"), rows.map((r) => ({ label: r.day, value: r.spent - r.refunded })),
                              "Tokens spent per day over the last 30 days");
      $("usage-table").tBodies[0].replaceChildren(...rows.filter((r) => r.spent || r.refunded || r.images).reverse()
        .map((r) => el("tr", {}, el("th", { scope: "row", text: r.day }), el("td", { text: String(r.spent) }),
                       el("td", { text: String(r.refunded) }), el("td", { text: String(r.images) }))));
      say("usage-status", rows.some((r) => r.spent) ? "" : "Nothing spent in the last 30 days.");
    } catch (err) {
      say("usage-status", err.message, "error");
    }
  }

  async function changePassword(event) {
    event.preventDefault();
    const body = { old_password: $("old-password").value, new_password: $("new-password").value,
                   revoke_keys: $("revoke-keys").checked };
    try {
      await api("POST", "/password", { json: body });
      $("old-password").value = $("new-password").value = "";
      if (body.revoke_keys) { signOut("Password changed and every key revoked: sign in with the new password."); return; }
      say("password-status", "Password changed. Your keys keep working.", "ok");
    } catch (err) {
      say("password-status", err.message, "error");
    }
  }

  async function deleteAccount(event) {
    event.preventDefault();
    const password = $("delete-password").value;
    try {
      await api("DELETE", "/account", { json: { password } });
      $("delete-password").value = "";
      signOut(`The account ${state.user} is deleted: its keys have stopped and its data is being removed.`);
    } catch (err) {
      say("delete-status", err.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", createKey);
    $("password-form").addEventListener("submit", changePassword);
    $("delete-form").addEventListener("submit", deleteAccount);
  });
  ImageClassifyConsole.room("account", { enter: () => Promise.all([loadKeys(), loadUsage()]) });
})();
