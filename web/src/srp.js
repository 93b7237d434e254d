// Cognito's Secure Remote Password sign-in (USER_SRP_AUTH): the password never leaves the browser. The same
// arithmetic as AWS's own clients (amazon-cognito-identity-js, pycognito): the 3072-bit group of RFC 5054, g = 2,
// SHA-256, and Cognito's HKDF ("Caldera Derived Key"). BigInt and WebCrypto only, so it also runs in Node's tests.

const N_HEX =
  "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
  "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
  "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
  "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
  "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
  "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7" +
  "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C" +
  "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF";
const N = BigInt("0x" + N_HEX);
const G = 2n;
const encoder = new TextEncoder();

export function hexToBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A number (or hex text) as Cognito hashes it: whole bytes, and a leading zero byte where the top bit is set.
export function padHex(value) {
  let hex = typeof value === "bigint" ? value.toString(16) : value;
  if (hex.length % 2 === 1) hex = "0" + hex;
  else if ("89abcdefABCDEF".includes(hex[0])) hex = "00" + hex;
  return hex;
}

export function modPow(base, exponent, modulus) {
  let result = 1n;
  let b = ((base % modulus) + modulus) % modulus;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
    e >>= 1n;
  }
  return result;
}

async function sha256Hex(bytes) {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))).padStart(64, "0");
}

async function hmac(keyBytes, messageBytes) {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, messageBytes));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function base64ToBytes(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function bytesToBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

// Cognito's timestamp: "Tue Mar 3 07:05:09 UTC 2026" (the day without a leading zero).
export function timestamp(date) {
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const two = (n) => String(n).padStart(2, "0");
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return `${days[date.getUTCDay()]} ${months[date.getUTCMonth()]} ${date.getUTCDate()} ${time} UTC ${date.getUTCFullYear()}`;
}

export function randomSmallA() {
  const bytes = crypto.getRandomValues(new Uint8Array(128));
  return BigInt("0x" + bytesToHex(bytes)) % N;
}

// The client's half of SRP: A = g^a mod N, sent with InitiateAuth as SRP_A.
export function largeA(smallA) {
  const value = modPow(G, smallA, N);
  if (value % N === 0n) throw new Error("SRP: A is zero");
  return value;
}

// The PASSWORD_VERIFIER answer to Cognito's challenge, from its parameters and the password.
export async function passwordVerifier({ poolId, password, smallA, challenge, now = new Date() }) {
  const poolName = poolId.split("_")[1];
  const userId = challenge.USER_ID_FOR_SRP;
  const bigA = largeA(smallA);
  const bigB = BigInt("0x" + challenge.SRP_B);
  if (bigB % N === 0n) throw new Error("SRP: the server's B is zero");
  const k = BigInt("0x" + (await sha256Hex(hexToBytes("00" + N_HEX + "0" + "2"))));
  const u = BigInt("0x" + (await sha256Hex(hexToBytes(padHex(bigA) + padHex(bigB)))));
  if (u === 0n) throw new Error("SRP: u is zero");
  const identity = await sha256Hex(encoder.encode(`${poolName}${userId}:${password}`));
  const x = BigInt("0x" + (await sha256Hex(hexToBytes(padHex(challenge.SALT) + identity))));
  const s = modPow(bigB - k * modPow(G, x, N), smallA + u * x, N);
  const prk = await hmac(hexToBytes(padHex(u)), hexToBytes(padHex(s)));
  const key = (await hmac(prk, concat(encoder.encode("Caldera Derived Key"), new Uint8Array([1])))).slice(0, 16);
  const stamp = timestamp(now);
  const message = concat(
    encoder.encode(poolName),
    encoder.encode(userId),
    base64ToBytes(challenge.SECRET_BLOCK),
    encoder.encode(stamp),
  );
  return {
    TIMESTAMP: stamp,
    USERNAME: userId,
    PASSWORD_CLAIM_SECRET_BLOCK: challenge.SECRET_BLOCK,
    PASSWORD_CLAIM_SIGNATURE: bytesToBase64(await hmac(key, message)),
  };
}
