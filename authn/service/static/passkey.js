// ztgate passkey client: registration and login with WebAuthn (L3 §5.1.3, §5.1.4).
//
// window.ztgatePasskey exposes promise-returning functions that call the
// authentication API (docs/authn-api.md) on this page's own origin. Every
// function resolves to {status, body}; it never rejects. HTTP errors come back
// as they are; a DOM or WebAuthn exception (NotAllowedError, InvalidStateError…)
// resolves to {status: 0, body: {error: e.name, error_description: e.message}}.
// The access token lives in this closure only (never in storage).
//
// The JSON <-> ArrayBuffer conversions are done by hand: PublicKeyCredential
// .parseCreationOptionsFromJSON / .toJSON are not available in every browser.
"use strict";

(function () {
  let accessToken = null;

  // --- base64url (RFC 4648 §5, unpadded) -------------------------------------
  function toBuffer(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "===".slice((b64.length + 3) % 4));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    if (buffer === null || buffer === undefined) return null;
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function failure(e) {
    return { status: 0, body: { error: (e && e.name) || "Error", error_description: String((e && e.message) || e) } };
  }

  async function call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (accessToken) headers.Authorization = "Bearer " + accessToken;
    const response = await fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
    const text = await response.text();
    let parsed = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch (e) {
      parsed = { error: "invalid_response", error_description: text.slice(0, 200) };
    }
    return { status: response.status, body: parsed };
  }

  function keepToken(result) {
    if (result.status === 200 && result.body && result.body.access_token) {
      accessToken = result.body.access_token;
    }
    return result;
  }

  function descriptors(list) {
    return (list || []).map(function (c) {
      const d = { type: c.type, id: toBuffer(c.id) };
      if (c.transports) d.transports = c.transports;
      return d;
    });
  }

  // PublicKeyCredentialCreationOptionsJSON -> PublicKeyCredentialCreationOptions (§5.4)
  function creationOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  // PublicKeyCredentialRequestOptionsJSON -> PublicKeyCredentialRequestOptions (§5.5)
  function requestOptions(json) {
    const options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  // PublicKeyCredential -> RegistrationResponseJSON (§5.1 toJSON)
  function registrationJSON(credential) {
    const r = credential.response;
    const response = {
      clientDataJSON: toText(r.clientDataJSON),
      attestationObject: toText(r.attestationObject),
      transports: typeof r.getTransports === "function" ? r.getTransports() : [],
    };
    if (typeof r.getAuthenticatorData === "function") response.authenticatorData = toText(r.getAuthenticatorData());
    if (typeof r.getPublicKeyAlgorithm === "function") response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  // PublicKeyCredential -> AuthenticationResponseJSON (§5.1 toJSON)
  function assertionJSON(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toText(r.clientDataJSON),
        authenticatorData: toText(r.authenticatorData),
        signature: toText(r.signature),
        userHandle: toText(r.userHandle),
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || null,
    };
  }

  async function loginPassword(username, password) {
    try {
      return keepToken(await call("POST", "/v1/login/password", { username: username, password: password }));
    } catch (e) {
      return failure(e);
    }
  }

  async function register(name) {
    try {
      const options = await call("POST", "/v1/webauthn/register/options", {});
      if (options.status !== 200) return options;
      const credential = await navigator.credentials.create({ publicKey: creationOptions(options.body.publicKey) });
      return await call("POST", "/v1/webauthn/register/verify", {
        challenge_id: options.body.challenge_id,
        credential: registrationJSON(credential),
        name: name || "",
      });
    } catch (e) {
      return failure(e);
    }
  }

  // Resolves to {status, body: {challenge_id, credential}} and, for convenience,
  // challenge_id and credential at the top level too (what submitAssertion takes).
  async function getAssertion(username) {
    try {
      const request = username ? { username: username } : {};
      const options = await call("POST", "/v1/webauthn/authenticate/options", request);
      if (options.status !== 200) return options;
      const credential = await navigator.credentials.get({ publicKey: requestOptions(options.body.publicKey) });
      const body = { challenge_id: options.body.challenge_id, credential: assertionJSON(credential) };
      return { status: 200, body: body, challenge_id: body.challenge_id, credential: body.credential };
    } catch (e) {
      return failure(e);
    }
  }

  async function submitAssertion(assertion) {
    try {
      const a = assertion && assertion.credential ? assertion : (assertion && assertion.body) || {};
      return keepToken(
        await call("POST", "/v1/webauthn/authenticate/verify", { challenge_id: a.challenge_id, credential: a.credential })
      );
    } catch (e) {
      return failure(e);
    }
  }

  async function login(username) {
    const assertion = await getAssertion(username);
    if (assertion.status !== 200) return assertion;
    return submitAssertion(assertion);
  }

  function logout() {
    accessToken = null;
  }

  window.ztgatePasskey = Object.freeze({
    loginPassword: loginPassword,
    register: register,
    getAssertion: getAssertion,
    submitAssertion: submitAssertion,
    login: login,
    logout: logout,
    hasToken: function () {
      return accessToken !== null;
    },
  });

  // --- the page's buttons --------------------------------------------------------
  function show(label, result) {
    const out = document.getElementById("result");
    if (!out) return;
    // Tokens are bearer secrets: show only their beginning.
    const redact = function (key, value) {
      return (key === "access_token" || key === "refresh_token") && typeof value === "string"
        ? value.slice(0, 12) + "…"
        : value;
    };
    out.textContent = label + "\n" + JSON.stringify({ status: result.status, body: result.body }, redact, 2);
  }

  function field(id) {
    const element = document.getElementById(id);
    return element ? element.value : "";
  }

  function wire() {
    const on = function (id, handler) {
      const button = document.getElementById(id);
      if (button) button.addEventListener("click", handler);
    };
    on("password-login", async function () {
      show("password login", await loginPassword(field("username"), field("password")));
    });
    on("register", async function () {
      show("register passkey", await register(field("passkey-name") || "passkey"));
    });
    on("passkey-login", async function () {
      show("sign in with passkey", await login(field("username") || undefined));
    });
    on("logout", function () {
      logout();
      show("signed out", { status: 0, body: {} });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wire);
  else wire();
})();
