// Progressive enhancement of the opening form: suggest a canonical role while the title is typed.
(function () {
  "use strict";
  var form = document.querySelector("[data-suggest-form]");
  if (!form) { return; }
  var title = form.querySelector("[data-suggest-title]");
  var role = form.querySelector("#field-role");
  var status = document.getElementById("role-suggestion");
  if (!title || !role || !status) { return; }
  var chosenByHand = role.value !== "";
  role.addEventListener("change", function () { chosenByHand = true; });
  var timer = null;
  title.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var text = title.value.trim();
      if (text.length < 3) { return; }
      fetch("/api/taxonomy/suggest?title=" + encodeURIComponent(text))
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body || !body.role) { status.textContent = ""; return; }
          status.textContent = "Suggested role: " + body.title;
          if (!chosenByHand) { role.value = body.role; }
        })
        .catch(function () { /* the Suggest button still works without this */ });
    }, 300);
  });
})();
