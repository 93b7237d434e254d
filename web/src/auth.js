// Signing in to the chat's Cognito user pool from the browser: SRP (srp.js), the challenges a user may meet
// (a new password for an administrator-created user, a TOTP code, setting up TOTP where the pool requires it),
// refresh, sign-out. Cognito's user pool API is called directly (it takes no AWS signature for these calls);
// tokens live in sessionStorage, so they go with the tab.

import { largeA, passwordVerifier, randomSmallA } from "./srp.js";

const STORAGE_KEY = "llm-chat.session";
// A token this close to its expiry is refreshed before use.
const EARLY_SECONDS = 60;

export class AuthError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

const MESSAGES = {
  NotAuthorizedException: "Incorrect email or password.",
  UserNotFoundException: "Incorrect email or password.",
  PasswordResetRequiredException: "Your password must be reset by an administrator.",
  CodeMismatchException: "That code is not right; try the current one.",
  InvalidPasswordException: "The new password does not meet the password policy.",
  TooManyRequestsException: "Too many attempts; wait a moment and try again.",
  LimitExceededException: "Too many attempts; wait a moment and try again.",
  ExpiredCodeException: "That code has expired; try the current one.",
};

export function claims(jwt) {
  const part = String(jwt).split(".")[1] || "";
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  try {
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))));
  } catch {
    return {};
  }
}

export class Auth {
  constructor({ endpoint, poolId, clientId, fetch = globalThis.fetch.bind(globalThis), storage = globalThis.sessionStorage, now = () => Date.now() }) {
    this.endpoint = endpoint;
    this.poolId = poolId;
    this.clientId = clientId;
    this.fetch = fetch;
    this.storage = storage;
    this.now = now;
    this.pending = null; // the challenge being answered: {name, session, username}
    this.refreshing = null;
  }

  async call(action, body) {
    let response;
    try {
      response = await this.fetch(this.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}` },
        body: JSON.stringify(body),
      });
    } catch {
      throw new AuthError("NetworkError", "Cannot reach the sign-in service; check the connection and try again.");
    }
    const text = await response.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = {};
    }
    if (!response.ok) {
      const code = String(data.__type || data.code || "Error").split("#").pop();
      throw new AuthError(code, MESSAGES[code] || data.message || "Signing in failed; try again.");
    }
    return data;
  }

  get session() {
    try {
      return JSON.parse(this.storage.getItem(STORAGE_KEY) || "null");
    } catch {
      return null;
    }
  }

  get email() {
    const session = this.session;
    return session ? session.email : null;
  }

  save(result, email) {
    const previous = this.session || {};
    const idToken = result.IdToken;
    const session = {
      idToken,
      accessToken: result.AccessToken,
      refreshToken: result.RefreshToken || previous.refreshToken,
      expiresAt: (claims(idToken).exp || 0) * 1000,
      email: email || previous.email || claims(idToken).email,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(session));
    this.pending = null;
    return { done: true };
  }

  // {done: true}, or {challenge: "NEW_PASSWORD_REQUIRED" | "SOFTWARE_TOKEN_MFA" | "MFA_SETUP"} to answer next.
  async signIn(email, password) {
    const smallA = randomSmallA();
    const started = await this.call("InitiateAuth", {
      AuthFlow: "USER_SRP_AUTH",
      ClientId: this.clientId,
      AuthParameters: { USERNAME: email, SRP_A: largeA(smallA).toString(16) },
    });
    if (started.ChallengeName !== "PASSWORD_VERIFIER") throw new AuthError("UnexpectedChallenge", "This sign-in method is not supported here.");
    const responses = await passwordVerifier({ poolId: this.poolId, password, smallA, challenge: started.ChallengeParameters });
    const answered = await this.call("RespondToAuthChallenge", {
      ChallengeName: "PASSWORD_VERIFIER",
      ClientId: this.clientId,
      ChallengeResponses: responses,
      Session: started.Session,
    });
    return this.next(answered, responses.USERNAME, email);
  }

  next(answer, username, email) {
    if (answer.AuthenticationResult) return this.save(answer.AuthenticationResult, email);
    const name = answer.ChallengeName;
    if (!["NEW_PASSWORD_REQUIRED", "SOFTWARE_TOKEN_MFA", "MFA_SETUP"].includes(name)) {
      throw new AuthError("UnexpectedChallenge", "This sign-in step is not supported here; ask an administrator.");
    }
    this.pending = { name, session: answer.Session, username, email };
    return { challenge: name };
  }

  async respond(responses) {
    const pending = this.pending;
    if (!pending) throw new AuthError("NoChallenge", "Start signing in again.");
    const answered = await this.call("RespondToAuthChallenge", {
      ChallengeName: pending.name,
      ClientId: this.clientId,
      Session: pending.session,
      ChallengeResponses: { USERNAME: pending.username, ...responses },
    });
    return this.next(answered, pending.username, pending.email);
  }

  newPassword(password) {
    return this.respond({ NEW_PASSWORD: password });
  }

  mfaCode(code) {
    return this.respond({ SOFTWARE_TOKEN_MFA_CODE: code });
  }

  // MFA_SETUP: the secret to add to an authenticator app; then confirmMfaSetup with its first code.
  async startMfaSetup() {
    const associated = await this.call("AssociateSoftwareToken", { Session: this.pending.session });
    this.pending.session = associated.Session;
    return associated.SecretCode;
  }

  async confirmMfaSetup(code) {
    const verified = await this.call("VerifySoftwareToken", { Session: this.pending.session, UserCode: code });
    this.pending.session = verified.Session;
    return this.respond({});
  }

  // The current ID token (refreshed when it is about to expire or when asked), or null when signed out.
  async idToken({ refresh = false } = {}) {
    const session = this.session;
    if (!session) return null;
    if (!refresh && session.expiresAt - EARLY_SECONDS * 1000 > this.now()) return session.idToken;
    if (!session.refreshToken) return null;
    this.refreshing ||= this.call("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: this.clientId,
      AuthParameters: { REFRESH_TOKEN: session.refreshToken },
    })
      .then((answer) => {
        this.save(answer.AuthenticationResult, session.email);
        return this.session.idToken;
      })
      .catch(() => {
        this.storage.removeItem(STORAGE_KEY); // the refresh token is no longer good: sign in again
        return null;
      })
      .finally(() => {
        this.refreshing = null;
      });
    return this.refreshing;
  }

  async signOut() {
    const session = this.session;
    this.storage.removeItem(STORAGE_KEY);
    this.pending = null;
    if (session && session.refreshToken) {
      // Revoking the refresh token ends the session in Cognito too; signed out here whatever it answers.
      await this.call("RevokeToken", { ClientId: this.clientId, Token: session.refreshToken }).catch(() => {});
    }
  }
}
