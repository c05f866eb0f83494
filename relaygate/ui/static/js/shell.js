// Shared page furniture: the detail drawer, the banner, and what a write does when it needs a fresh login.

import { h, replace } from "./dom.js";
import { NeedsLogin } from "./api.js";

const banner = document.getElementById("banner");
const drawer = document.getElementById("drawer");

export const shell = { loginMessage: "" };

export function showBanner(message, kind = "info") {
  if (!message) {
    banner.hidden = true;
    return;
  }
  banner.className = `banner ${kind}`;
  replace(banner, message);
  banner.hidden = false;
}

/** The detail drawer: openDrawer(title, node); closeDrawer(). */
export function openDrawer(title, content) {
  const close = h("button", { type: "button", class: "close", "aria-label": "Close" }, "×");
  close.addEventListener("click", closeDrawer);
  replace(drawer, h("header", null, h("h2", null, title), close), h("div", { class: "drawer-body" }, content));
  drawer.hidden = false;
  return drawer.querySelector(".drawer-body");
}
export function closeDrawer() {
  drawer.hidden = true;
  replace(drawer);
}
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && !drawer.hidden) closeDrawer();
});

/** Pages call this when a write needs a fresh login (the CSRF token was lost on reload). */
export function handleWriteError(error) {
  if (error instanceof NeedsLogin) {
    shell.loginMessage = error.message;
    location.hash = "#/login";
    return true;
  }
  return false;
}

