// callbid console: the live parts, in plain JavaScript (no library).
// A log table with data-live polls for rows newer than the newest it shows and puts them on top;
// a countdown counts down to its data-expires.
"use strict";

function pollLog(table) {
  const body = table.tBodies[0];
  let newest = table.dataset.newest || "";
  const url = table.dataset.live;
  async function poll() {
    try {
      const sep = url.includes("?") && !url.endsWith("?") ? "&" : "";
      const response = await fetch(url + sep + "after=" + encodeURIComponent(newest), {
        credentials: "same-origin", headers: { Accept: "text/html" },
      });
      if (response.ok) {
        const holder = document.createElement("tbody");
        holder.innerHTML = (await response.text()).trim();
        const rows = Array.from(holder.rows);
        if (rows.length) {
          for (const row of rows.reverse()) { row.classList.add("new"); body.prepend(row); }
          newest = body.rows[0].dataset.cursor;
          const empty = document.querySelector(".empty");
          if (empty) empty.remove();
        }
      }
    } catch (error) { /* offline for a moment: try again on the next tick */ }
    window.setTimeout(poll, 2000);
  }
  window.setTimeout(poll, 2000);
}

function countDown(element) {
  const until = Date.parse(element.dataset.expires);
  function tick() {
    const left = Math.max(0, Math.round((until - Date.now()) / 1000));
    element.textContent = left > 0 ? left + " s left" : "expired";
    if (left > 0) window.setTimeout(tick, 1000);
  }
  tick();
}

function copyButton(button) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent;
    try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
    catch (error) { window.getSelection().selectAllChildren(document.getElementById(button.dataset.copy)); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button.copy[data-copy]").forEach(copyButton);
  document.querySelectorAll("table[data-live]").forEach(pollLog);
  document.querySelectorAll(".countdown[data-expires]").forEach(countDown);
});
