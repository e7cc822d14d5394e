// Destructive ILL actions (cancel, reject, close, mark lost, granting a cancel) ask before
// they are taken. Without this script the server answers such a form with a confirmation
// page; with it, the browser's own dialog asks, and the form then says it was confirmed.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
    return;
  }
  if (!window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (!form.querySelector("input[name=confirm]")) {
    const flag = document.createElement("input");
    flag.type = "hidden";
    flag.name = "confirm";
    flag.value = "1";
    form.appendChild(flag);
  }
});
