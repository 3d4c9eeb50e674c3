// The console's few behaviours that need a script. Loaded from a file (no inline script: CSP).
(function () {
  "use strict";

  function copy(button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) return;
    var text = "value" in target && target.tagName === "INPUT" ? target.value : target.textContent;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () {
        if (target.select) { target.select(); }
      });
    } else if (target.select) {
      target.select();
    }
  }

  // A revealed MCP URL puts itself back behind the mask after data-remask-after seconds.
  function remask(element) {
    var template = element.querySelector("template[data-masked]");
    if (!template || !element.isConnected) return;
    var masked = template.content.firstElementChild.cloneNode(true);
    element.replaceWith(masked);
    if (window.htmx) window.htmx.process(masked);
  }

  function armRemask(root) {
    var nodes = root.querySelectorAll ? root.querySelectorAll("[data-remask-after]") : [];
    var all = Array.prototype.slice.call(nodes);
    if (root.matches && root.matches("[data-remask-after]")) all.push(root);
    all.forEach(function (element) {
      if (element.dataset.remaskArmed) return;
      element.dataset.remaskArmed = "1";
      var seconds = parseFloat(element.getAttribute("data-remask-after")) || 60;
      setTimeout(function () { remask(element); }, seconds * 1000);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (button) { event.preventDefault(); copy(button); }
  });

  // Enter in the search box opens the first result instead of reloading the page.
  document.addEventListener("keydown", function (event) {
    var input = event.target.closest ? event.target.closest("[data-enter-opens-first]") : null;
    if (!input || event.key !== "Enter") return;
    var first = document.querySelector(input.getAttribute("data-enter-opens-first"));
    if (first) { event.preventDefault(); first.click(); }
  });

  document.addEventListener("DOMContentLoaded", function () { armRemask(document); });
  document.addEventListener("htmx:load", function (event) { armRemask(event.target); });
  // Leaving the page masks every revealed URL, so the back-forward cache never holds one.
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[data-remask-after]").forEach(remask);
  });
})();
