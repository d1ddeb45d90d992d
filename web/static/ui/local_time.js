// Times on the master-data pages in the reader's local time: each <time class="local"
// datetime="ISO"> keeps its UTC text as a title and shows the local date and time.
(function () {
  "use strict";
  document.querySelectorAll("time.local[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) return;
    el.title = el.textContent;
    el.textContent = el.classList.contains("date")
      ? when.toLocaleDateString()
      : when.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  });
})();
