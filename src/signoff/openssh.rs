//! Reading OpenSSH private keys (PROTOCOL.key) that the `ssh-key` crate rejects.
//!
//! OpenSSH stores an ECDSA private scalar as an SSH `mpint`, which drops leading zero bytes:
//! a P-521 scalar is 65 instead of 66 bytes about a quarter of the time, a P-256/P-384 scalar
//! is short once in 256 keys. `ssh-key` 0.6 insists on the full field size and fails with
//! "length invalid". This module re-encodes such a key's private section with the scalar
//! left-padded to the field size (same number, canonical width) and fresh padding, then hands
//! the now-acceptable unencrypted key back to `ssh-key`. Passphrase-protected keys are decrypted
//! first with `ssh-key`'s own KDF and cipher (not for AEAD ciphers, whose tag is not exposed).

use base64::Engine;
use ssh_key::PrivateKey;

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_at_checked(4)?;
        self.0 = rest;
        Some(u32::from_be_bytes(head.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

/// The outer structure of an OpenSSH private key file.
struct Outer<'a> {
    cipher: &'a [u8],
    kdf: &'a [u8],
    kdf_options: &'a [u8],
    public: &'a [u8],
    private: &'a [u8],
}

fn decode_pem(text: &str) -> Option<Vec<u8>> {
    let start = text.find(BEGIN)? + BEGIN.len();
    let end = text.find(END)?;
    let b64: String = text
        .get(start..end)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

fn parse_outer(bin: &[u8]) -> Option<Outer<'_>> {
    let mut r = Reader(bin.strip_prefix(MAGIC)?);
    let cipher = r.string()?;
    let kdf = r.string()?;
    let kdf_options = r.string()?;
    if r.u32()? != 1 {
        return None;
    }
    let public = r.string()?;
    let private = r.string()?;
    Some(Outer {
        cipher,
        kdf,
        kdf_options,
        public,
        private,
    })
}

/// Rebuild a decrypted private section with a full-width ECDSA scalar and padding for an
/// 8-byte block. `None` when it is not an ECDSA key or is malformed.
fn fix_private_section(plain: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader(plain);
    let check1 = r.u32()?;
    let check2 = r.u32()?;
    let key_type = r.string()?;
    let size = match key_type {
        b"ecdsa-sha2-nistp256" => 32,
        b"ecdsa-sha2-nistp384" => 48,
        b"ecdsa-sha2-nistp521" => 66,
        _ => return None,
    };
    let curve = r.string()?;
    let point = r.string()?;
    let scalar = r.string()?;
    let comment = r.string()?;
    let scalar = match scalar {
        [0, rest @ ..] if rest.len() == size => scalar,
        s if s.len() <= size => {
            let mut padded = vec![0u8; size - s.len()];
            padded.extend_from_slice(s);
            return Some(rebuild(
                check1, check2, key_type, curve, point, &padded, comment,
            ));
        }
        _ => return None,
    };
    Some(rebuild(
        check1, check2, key_type, curve, point, scalar, comment,
    ))
}

fn rebuild(
    check1: u32,
    check2: u32,
    key_type: &[u8],
    curve: &[u8],
    point: &[u8],
    scalar: &[u8],
    comment: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&check1.to_be_bytes());
    out.extend_from_slice(&check2.to_be_bytes());
    put_string(&mut out, key_type);
    put_string(&mut out, curve);
    put_string(&mut out, point);
    put_string(&mut out, scalar);
    put_string(&mut out, comment);
    let mut pad = 1u8;
    while out.len() % 8 != 0 {
        out.push(pad);
        pad += 1;
    }
    out
}

fn unencrypted_pem(public: &[u8], private: &[u8]) -> String {
    let mut bin = MAGIC.to_vec();
    put_string(&mut bin, b"none");
    put_string(&mut bin, b"none");
    put_string(&mut bin, b"");
    bin.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut bin, public);
    put_string(&mut bin, private);
    let b64 = base64::engine::general_purpose::STANDARD.encode(bin);
    let mut pem = format!("{BEGIN}\n");
    for chunk in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str(END);
    pem.push('\n');
    pem
}

/// Read an unencrypted key `ssh-key` rejected; `None` when this module cannot help either.
pub fn read_unencrypted(text: &str) -> Option<PrivateKey> {
    let bin = decode_pem(text)?;
    let outer = parse_outer(&bin)?;
    if outer.cipher != b"none" || outer.kdf != b"none" || !outer.kdf_options.is_empty() {
        return None;
    }
    let fixed = fix_private_section(outer.private)?;
    PrivateKey::from_openssh(unencrypted_pem(outer.public, &fixed)).ok()
}

/// Why a manual decryption failed.
pub enum DecryptError {
    /// The check integers differ: the passphrase is wrong.
    WrongPassphrase,
    /// This module cannot read the key (AEAD cipher, not ECDSA, malformed).
    Unsupported(String),
}

/// Decrypt `key` (parsed, still encrypted) with `passphrase` and read it, repairing a short
/// ECDSA scalar.
///
/// # Errors
/// [`DecryptError`].
pub fn decrypt(key: &PrivateKey, passphrase: &[u8]) -> Result<PrivateKey, DecryptError> {
    let unsupported = |m: &str| DecryptError::Unsupported(m.to_string());
    if key.cipher().has_tag() {
        return Err(unsupported(
            "keys encrypted with an authenticated cipher are read only by ssh-key itself",
        ));
    }
    let ciphertext = key
        .key_data()
        .encrypted()
        .ok_or_else(|| unsupported("the key is not encrypted"))?;
    let (k, iv) = key
        .kdf()
        .derive_key_and_iv(key.cipher(), passphrase)
        .map_err(|e| DecryptError::Unsupported(e.to_string()))?;
    let mut buf = zeroize::Zeroizing::new(ciphertext.to_vec());
    key.cipher()
        .decrypt(&k, &iv, &mut buf, None)
        .map_err(|e| DecryptError::Unsupported(e.to_string()))?;
    let mut r = Reader(&buf);
    if r.u32() != r.u32() {
        return Err(DecryptError::WrongPassphrase);
    }
    let fixed = fix_private_section(&buf).ok_or_else(|| unsupported("malformed private key"))?;
    let public = key
        .public_key()
        .to_bytes()
        .map_err(|e| DecryptError::Unsupported(e.to_string()))?;
    PrivateKey::from_openssh(unencrypted_pem(&public, &fixed))
        .map_err(|e| DecryptError::Unsupported(e.to_string()))
}
