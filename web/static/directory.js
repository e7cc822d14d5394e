// The directory: filter by name, pinyin or initials as you type; at most data-max ticks.
(function () {
  var form = document.getElementById("choose");
  var match = document.getElementById("match");
  if (!form) { return; }
  var max = parseInt(form.dataset.max, 10);
  var counter = document.getElementById("chosen-count");
  var warning = document.getElementById("too-many");
  function fold(text) { return text.toLowerCase().replace(/[^0-9a-z\u3400-\u9fff ]/g, ""); }
  function ticked() { return form.querySelectorAll("input[name=library]:checked, input[type=hidden][name=library]").length; }
  form.addEventListener("change", function (event) {
    var box = event.target;
    if (box.name !== "library") { return; }
    if (box.checked && ticked() > max) {
      box.checked = false;
      warning.textContent = form.dataset.tooMany.replace("{k}", String(max + 1));
      warning.hidden = false;
    } else {
      warning.hidden = true;
    }
    counter.textContent = String(ticked());
  });
  if (match) {
    match.addEventListener("input", function () {
      var wanted = fold(match.value).replace(/ /g, "");
      form.querySelectorAll("tr.library").forEach(function (row) {
        var keys = fold(row.dataset.keys).split(" ");
        var hit = !wanted || keys.some(function (k) { return k.indexOf(wanted) !== -1; });
        row.hidden = !hit;
      });
      form.querySelectorAll("section.category").forEach(function (section) {
        section.hidden = !section.querySelector("tr.library:not([hidden])");
      });
    });
  }
})();
