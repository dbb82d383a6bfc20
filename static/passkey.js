// Passkeys (WebAuthn). A form with data-passkey="create" or "get" carries the server's options in
// data-options (webauthn-rs's CreationChallengeResponse or RequestChallengeResponse as JSON, binary
// members in base64url). On submit this asks the browser for a new credential or an assertion,
// writes the answer as JSON into the form's hidden field "credential", and submits the form with
// its CSRF token. No fetch: the pages' Content-Security-Policy (default-src 'none') allows none.
"use strict";
(function () {
  const KNOWN_TRANSPORTS = ["usb", "nfc", "ble", "hybrid", "internal"];

  function bytes(text) {
    let b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    const raw = atob(b64);
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function base64url(buffer) {
    const view = new Uint8Array(buffer);
    let raw = "";
    for (let i = 0; i < view.length; i++) raw += String.fromCharCode(view[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // Absent members may come as null, which the WebAuthn dictionaries refuse.
  function withoutNulls(value) {
    if (Array.isArray(value)) return value.map(withoutNulls);
    if (value === null || typeof value !== "object") return value;
    const out = {};
    for (const [key, member] of Object.entries(value)) {
      if (member !== null) out[key] = withoutNulls(member);
    }
    return out;
  }

  async function create(options) {
    const o = withoutNulls(options).publicKey;
    o.challenge = bytes(o.challenge);
    o.user.id = bytes(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    const c = await navigator.credentials.create({ publicKey: o });
    const r = c.response;
    const transports = typeof r.getTransports === "function"
      ? r.getTransports().filter((t) => KNOWN_TRANSPORTS.includes(t)) : [];
    return {
      id: c.id, rawId: base64url(c.rawId), type: c.type,
      response: {
        attestationObject: base64url(r.attestationObject),
        clientDataJSON: base64url(r.clientDataJSON),
        transports: transports,
      },
      extensions: c.getClientExtensionResults(),
    };
  }

  async function get(options) {
    const o = withoutNulls(options).publicKey;
    o.challenge = bytes(o.challenge);
    (o.allowCredentials || []).forEach((c) => { c.id = bytes(c.id); });
    const c = await navigator.credentials.get({ publicKey: o });
    const r = c.response;
    return {
      id: c.id, rawId: base64url(c.rawId), type: c.type,
      response: {
        authenticatorData: base64url(r.authenticatorData),
        clientDataJSON: base64url(r.clientDataJSON),
        signature: base64url(r.signature),
        userHandle: r.userHandle ? base64url(r.userHandle) : null,
      },
      extensions: c.getClientExtensionResults(),
    };
  }

  document.querySelectorAll("form[data-passkey]").forEach((form) => {
    const field = form.querySelector("input[name=credential]");
    const error = form.parentElement.querySelector("[data-passkey-error]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (error) error.hidden = true;
      try {
        if (!window.PublicKeyCredential) throw new DOMException("", "NotSupportedError");
        const options = JSON.parse(form.dataset.options);
        const answer = form.dataset.passkey === "create" ? await create(options) : await get(options);
        field.value = JSON.stringify(answer);
        form.submit();
      } catch (e) {
        if (error) {
          error.textContent = form.dataset.error;
          error.hidden = false;
        }
      }
    });
  });
})();
