// The phone's menu. Without JavaScript a checkbox (its label reads 菜单) folds and unfolds
// the menu through CSS alone; with it, a real button says whether the menu is open
// (aria-expanded) and Escape folds it again, giving the focus back to the button.
(function () {
  var header = document.querySelector("header.site");
  var box = document.getElementById("menu-open");
  var label = header && header.querySelector("label.menu-toggle");
  var nav = document.getElementById("site-nav");
  if (!header || !box || !label || !nav) { return; }
  var button = document.createElement("button");
  button.type = "button";
  button.className = "menu-toggle";
  button.textContent = label.textContent;
  button.setAttribute("aria-controls", "site-nav");
  function show(open) {
    header.classList.toggle("menu-shown", open);
    button.setAttribute("aria-expanded", open ? "true" : "false");
  }
  show(box.checked);
  box.remove();
  label.replaceWith(button);
  button.addEventListener("click", function () {
    show(button.getAttribute("aria-expanded") !== "true");
  });
  header.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      show(false);
      button.focus();
    }
  });
})();
