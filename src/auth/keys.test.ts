import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { libtrustKeyId } from "./keys.js";

/** The libtrust id computed the long way: openssl's DER, sha256sum, Python's base32. */
function libtrustByTools(pem: string): string {
  const script = [
    "import base64, hashlib, subprocess, sys",
    "der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'DER'], input=sys.stdin.buffer.read(), capture_output=True, check=True).stdout",
    "b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()",
    "print(':'.join(b32[i:i+4] for i in range(0, len(b32), 4)))",
  ].join("\n");
  return execFileSync("python3", ["-c", script], { input: pem }).toString().trim();
}

describe("libtrust key id", () => {
  it("is the base32 of the SPKI's SHA-256 truncated to 240 bits, in groups of four", () => {
    for (const [type, options] of [
      ["ec", { namedCurve: "P-256" }],
      ["rsa", { modulusLength: 2048 }],
    ] as const) {
      const { publicKey, privateKey } = generateKeyPairSync(
        type as "ec",
        options as { namedCurve: string },
      );
      const id = libtrustKeyId(publicKey);
      assert.match(id, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
      assert.equal(
        id,
        libtrustByTools(publicKey.export({ type: "spki", format: "pem" }) as string),
      );
      assert.equal(libtrustKeyId(privateKey), id);
    }
  });
});
