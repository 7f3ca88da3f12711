/* Helpers the board scripts share: fetch with the staff session, and building elements. */
"use strict";

(function () {
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin",
      headers: { "Accept": "application/json" } }, options || {}));
    if (response.status === 401) {
      window.location.reload(); // the server shows the login page
      throw new Error("logged out");
    }
    return response;
  }

  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  window.OpenShelfDom = { api, element };
})();
