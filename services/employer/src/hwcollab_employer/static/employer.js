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

// Estimated reach while the opening is written: a little after each change, the form as it stands
// is sent to the dashboard's estimate endpoint (nothing stored); without script, "Check reach"
// submits the form and the page comes back with the estimate.
(function () {
  "use strict";
  var box = document.querySelector("[data-reach-estimate]");
  if (!box) { return; }
  var form = box.closest("form");
  var text = document.getElementById("reach-text");
  var cuts = document.getElementById("reach-cuts");
  if (!form || !text || !cuts) { return; }
  var timer = null;
  var asked = 0;
  function show(sentence, items) {
    text.textContent = sentence;
    while (cuts.firstChild) { cuts.removeChild(cuts.firstChild); }
    (items || []).forEach(function (item) {
      var li = document.createElement("li");
      li.textContent = item;
      cuts.appendChild(li);
    });
  }
  function ask() {
    var body = new FormData(form);
    body.set("action", "estimate");
    var mine = ++asked;
    fetch(box.getAttribute("data-reach-url"), {
      method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json" }
    })
      .then(function (response) {
        return response.json().then(function (json) { return { status: response.status, json: json }; });
      })
      .then(function (answer) {
        if (mine !== asked) { return; }  // a newer question is on its way
        if (answer.status === 422) { return; }  // the form is not complete yet
        show(answer.json.text || "The estimate is unavailable right now.", answer.json.cuts);
      })
      .catch(function () {
        if (mine === asked) { show("The estimate is unavailable right now; the opening can still be posted.", []); }
      });
  }
  // Typing the title, the description or the apply link changes nobody's reach.
  var ignored = { title: true, description: true, apply_url: true, expires_on: true, csrf_token: true };
  function later(event) {
    if (event.target && ignored[event.target.name]) { return; }
    clearTimeout(timer);
    timer = setTimeout(ask, 600);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
