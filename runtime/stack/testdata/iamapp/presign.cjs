// Presigns a WebSocket URL for execute-api with the AWS SDK for
// JavaScript v3's signer (@smithy/signature-v4), as a browser client does,
// and prints it. Usage: node presign.cjs URL ACCESS_KEY SECRET
const crypto = require("node:crypto");
const { SignatureV4 } = require("@smithy/signature-v4");

class Sha256 {
  constructor(secret) { this.h = secret ? crypto.createHmac("sha256", secret) : crypto.createHash("sha256"); }
  update(data) { this.h.update(data); }
  async digest() { return new Uint8Array(this.h.digest()); }
}

(async () => {
  const [url, accessKeyId, secretAccessKey] = process.argv.slice(2);
  const u = new URL(url);
  const signer = new SignatureV4({
    service: "execute-api", region: "us-east-1", sha256: Sha256,
    credentials: { accessKeyId, secretAccessKey, sessionToken: "token" },
  });
  const req = await signer.presign(
    { method: "GET", protocol: "http:", hostname: u.hostname, port: u.port, path: u.pathname, query: {}, headers: { host: u.host } },
    { expiresIn: 60 },
  );
  console.log(`${u.protocol}//${u.host}${req.path}?${new URLSearchParams(req.query)}`);
})();
