// Live results: long-poll the server for fragments of the same templates until done.
(function () {
  var root = document.getElementById("results");
  if (!root || root.dataset.live !== "1") { return; }
  var revision = -1;
  var failures = 0;
  // Focus: a panel replaced while it held the focus takes the focus itself, and when the
  // results are complete a reader whose focus was nowhere (on <body>) is taken to them.
  function hold(el) { if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "-1"); } el.focus({preventScroll: true}); }
  function put(id, html) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var had = el.contains(document.activeElement) && document.activeElement !== el;
    el.innerHTML = html;
    if (had) { hold(el); }
  }
  function arrived() {
    var el = document.getElementById("records");
    var active = document.activeElement;
    if (el && (!active || active === document.body || active === document.documentElement)) { hold(el); }
  }
  function poll() {
    var url = root.dataset.liveUrl + (root.dataset.liveUrl.indexOf("?") === -1 ? "?" : "&") + "rev=" + revision;
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        revision = data.revision;
        put("summary", data.summary);
        put("libraries", data.libraries);
        put("records", data.records);
        put("facets", data.facets);
        put("pager", data.pager);
        if (data.done) { root.dataset.live = "0"; root.dataset.done = "1"; arrived(); return; }
        poll();
      })
      .catch(function () {
        failures += 1;
        if (failures < 5) { setTimeout(poll, 1000 * failures); }
        else { window.location.href = window.location.href.replace("live=1", "live=0"); }  // waits server-side
      });
  }
  poll();
})();
