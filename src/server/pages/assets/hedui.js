// hedui staff pages: a batch page follows its job until it is done, without a reload
// of the page (the part that changes is fetched and swapped in).
(function () {
  "use strict";
  function follow(el) {
    var url = el.getAttribute("data-follow");
    var tick = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.querySelector("[data-follow]") || doc.querySelector("main");
          var main = document.querySelector("main");
          if (doc.querySelector("main")) { main.innerHTML = doc.querySelector("main").innerHTML; }
          if (doc.querySelector("main [data-follow]")) { setTimeout(tick, 1000); }
        })
        .catch(function () { setTimeout(tick, 3000); });
    };
    setTimeout(tick, 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.querySelector("[data-follow]");
    if (el) { follow(el); }
  });
})();
// "打印本报告": the browser's print dialog (no inline script under the page's policy).
document.addEventListener("click", function (e) {
  var t = e.target;
  if (t && t.hasAttribute && t.hasAttribute("data-print")) { e.preventDefault(); window.print(); }
});
