// Hemostat's web view: refresh the page's <main> every few seconds, and send Approve / Reject
// with the page's CSRF token. No framework; nothing from the server is put in as HTML except
// the server's own rendered (escaped) page.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const flash = (text, ok) => {
    const el = document.getElementById("flash");
    el.textContent = text;
    el.className = ok ? "ok" : "error";
  };

  async function refresh() {
    const main = document.querySelector("main[data-live]");
    if (!main || document.hidden || main.contains(document.activeElement) &&
        document.activeElement.tagName === "INPUT") {
      return;
    }
    try {
      const answer = await fetch(location.href, {credentials: "same-origin", cache: "no-store"});
      if (!answer.ok) {
        flash(answer.status === 401 ? "Signed out: run `hemostat ui --server URL` again." :
          `Refresh failed: ${answer.status}`, false);
        return;
      }
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html").querySelector("main");
      if (fresh && fresh.innerHTML !== main.innerHTML) {
        main.replaceChildren(...fresh.childNodes);
      }
    } catch (e) {
      flash("Cannot reach Hemostat; retrying.", false);
    }
  }

  async function decide(form, verb) {
    const reason = form.querySelector('input[name="reason"]').value;
    if (verb === "reject" && !reason) {
      flash("Give a reason to reject.", false);
      return;
    }
    const answer = await fetch(`/ui/${verb}`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify({id: form.dataset.id, reason: reason}),
    });
    const doc = await answer.json().catch(() => ({}));
    flash(answer.ok ? doc.message : `${verb} refused (${answer.status}): ${doc.error || ""}`, answer.ok);
    await refresh();
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form.decide");
    if (!form) return;
    event.preventDefault();
    const verb = event.submitter ? event.submitter.value : "approve";
    decide(form, verb);
  });
  document.addEventListener("click", async (event) => {
    if (!event.target.matches("[data-signout]")) return;
    await fetch("/ui/signout", {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf()}});
    location.reload();
  });
  setInterval(refresh, REFRESH_MS);
})();
