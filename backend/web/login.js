/* Login: posts JSON to /api/login and opens the board; errors appear in #login-error. */
"use strict";

(function () {
  const { t, apply, setUpToggle } = window.OpenShelfI18n;
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  let errorKey = null;

  function showError(key) {
    errorKey = key;
    error.textContent = t(key);
    error.hidden = false;
  }

  async function submit(event) {
    event.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) {
      showError("login.missing");
      return;
    }
    form.querySelector("button[type=submit]").disabled = true;
    try {
      const response = await fetch("/api/login", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ username, password }),
        credentials: "same-origin",
      });
      if (response.ok) {
        window.location.assign("/");
        return;
      }
      showError(response.status === 401 ? "login.wrong"
        : response.status === 429 ? "login.tooMany"
        : response.status === 422 ? "login.missing" : "login.failed");
      form.password.value = "";
      form.password.focus();
    } catch (problem) {
      showError("login.failed");
    } finally {
      form.querySelector("button[type=submit]").disabled = false;
    }
  }

  apply(document);
  setUpToggle(document.getElementById("lang-toggle"));
  window.OpenShelfI18n.onChange(() => { if (errorKey) showError(errorKey); });
  form.addEventListener("submit", submit);
  if (new URLSearchParams(window.location.search).get("error") === "login") showError("login.wrong");
  form.username.focus();
})();
