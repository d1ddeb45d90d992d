// Trend pages: times are sent in UTC (<time class="local-time" datetime="...">); show
// them in the reader's local time, keeping the UTC time as the tooltip.
(function () {
  "use strict";
  var format = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  Array.prototype.forEach.call(document.querySelectorAll("time.local-time[datetime]"), function (el) {
    var moment = new Date(el.getAttribute("datetime"));
    if (isNaN(moment.getTime())) return;
    el.title = el.textContent;
    el.textContent = moment.toLocaleString(undefined, format);
  });
})();
