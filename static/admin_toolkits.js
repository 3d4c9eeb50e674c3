// The toolkit picker of the session admin pages: filter 200+ checkboxes by slug, name or
// category, optionally show only the chosen ones, and keep a live count. No dependencies.
(function () {
  "use strict";
  function init() {
    var picker = document.getElementById("toolkit-picker");
    var filter = document.getElementById("toolkit-filter");
    if (!picker || !filter) { return; }
    var onlyChosen = document.getElementById("toolkit-only-selected");
    var count = document.getElementById("toolkit-count");
    var items = Array.prototype.slice.call(picker.querySelectorAll("li[data-search]"));
    var groups = Array.prototype.slice.call(picker.querySelectorAll(".toolkit-group"));

    function update() {
      var terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      var chosen = 0, shown = 0;
      items.forEach(function (li) {
        var box = li.querySelector("input[type=checkbox]");
        if (box.checked) { chosen += 1; }
        var text = li.getAttribute("data-search");
        var match = terms.every(function (t) { return text.indexOf(t) !== -1; });
        if (onlyChosen && onlyChosen.checked && !box.checked) { match = false; }
        li.hidden = !match;
        if (match) { shown += 1; }
      });
      groups.forEach(function (group) {
        group.hidden = !group.querySelector("li[data-search]:not([hidden])");
      });
      if (count) { count.textContent = chosen + " chosen, " + shown + " of " + items.length + " shown"; }
    }

    filter.addEventListener("input", update);
    filter.addEventListener("keydown", function (event) {
      // Enter in the filter box must not submit the action.
      if (event.key === "Enter") { event.preventDefault(); }
    });
    if (onlyChosen) { onlyChosen.addEventListener("change", update); }
    picker.addEventListener("change", update);
    update();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
