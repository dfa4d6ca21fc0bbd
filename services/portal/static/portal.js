// The portal's only script (no inline script: the Content-Security-Policy forbids it).
// 1. Live parts: an element with data-live="URL" and data-pending="true" is fetched again
//    from URL every half second and replaced by the answer, until it is no longer pending.
// 2. Copy buttons: data-copy names the element whose text goes to the clipboard.
"use strict";

const REFRESH_MS = 500;

function refresh(element) {
  const url = element.getAttribute("data-live");
  fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => {
      if (response.redirected || response.status === 401) {
        window.location.reload(); // the session ended: the page says so and offers sign-in
        return null;
      }
      if (response.status >= 400 && response.status < 500) {
        element.removeAttribute("data-pending"); // gone or refused: asking again changes nothing
        return null;
      }
      if (!response.ok) throw new Error(String(response.status));
      return response.text();
    })
    .then((html) => {
      if (html === null) return;
      const holder = document.createElement("template");
      holder.innerHTML = html.trim();
      const fresh = holder.content.querySelector("[data-live]");
      if (!fresh) return;
      element.replaceWith(fresh);
      watch(fresh);
    })
    .catch(() => setTimeout(() => refresh(element), REFRESH_MS * 2)); // a hiccup: try again shortly
}

function watch(element) {
  if (element.getAttribute("data-pending") === "true") {
    setTimeout(() => refresh(element), REFRESH_MS);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(() => {
    const label = button.textContent;
    button.textContent = button.getAttribute("data-copied");
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(watch);
});
