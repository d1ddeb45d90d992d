// Times marked <time data-local datetime="ISO"> are shown in the reader's local time
// (the server renders UTC, which stays in the title for the record).
(function () {
  for (const el of document.querySelectorAll("time[data-local]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) continue;
    el.title = el.textContent;
    el.textContent = when.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
  }
})();
