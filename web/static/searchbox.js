// With JavaScript the results page streams (live=1); without it the server waits.
document.querySelectorAll("input.js-live").forEach(function (input) { input.value = "1"; });
