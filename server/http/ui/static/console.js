// edgejoin console: keeps a page current while machines boot, without a reload. Every few
// seconds it fetches the same page, and swaps in each [data-region] that changed; table bodies
// marked data-rows="merge" gain and lose rows by data-key, so a row someone is filling in (a
// chosen cluster, a typed hostname, a ticked box) stays as it is. No inline script anywhere:
// the Content-Security-Policy allows only this file.

(() => {
  if (document.body.dataset.live !== "on") return;
  var everyMs = 2000;
  var status = document.getElementById("live-status");
  var busy = false;

  function say(text) {
    if (status) status.textContent = text;
  }

  function mergeRows(current, fresh) {
    var keep = {};
    Array.prototype.forEach.call(fresh.children, (row) => {
      keep[row.dataset.key] = true;
    });
    Array.prototype.slice.call(current.children).forEach((row) => {
      if (!keep[row.dataset.key] && !row.contains(document.activeElement)) row.remove();
    });
    var have = {};
    Array.prototype.forEach.call(current.children, (row) => {
      have[row.dataset.key] = true;
    });
    Array.prototype.forEach.call(fresh.children, (row) => {
      if (!have[row.dataset.key]) current.appendChild(document.importNode(row, true));
    });
  }

  function apply(doc) {
    document.querySelectorAll("[data-region]").forEach((el) => {
      var fresh = doc.querySelector(`[data-region="${el.dataset.region}"]`);
      if (fresh && fresh.innerHTML !== el.innerHTML && !el.contains(document.activeElement)) el.innerHTML = fresh.innerHTML;
    });
    document.querySelectorAll('[data-rows="merge"]').forEach((el) => {
      var fresh = doc.getElementById(el.id);
      if (fresh) mergeRows(el, fresh);
    });
  }

  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(location.pathname, { headers: { "x-live": "1" }, credentials: "same-origin" })
      .then((res) => {
        if (res.status === 401) {
          say("signed out: reload to sign in");
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then((html) => {
        if (html === null) return;
        // DOMParser documents never run scripts: the fetched page is data here.
        apply(new DOMParser().parseFromString(html, "text/html"));
        say(`updated ${new Date().toLocaleTimeString()}`);
      })
      .catch(() => {
        say("edgejoin is not answering; retrying");
      })
      .then(() => {
        busy = false;
      });
  }

  setInterval(tick, everyMs);
})();
