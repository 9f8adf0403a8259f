//! Keys and SSHSIG: loading OpenSSH private keys (passphrase from the environment or a
//! terminal prompt), signing a message (with the RSA/SHA-512 path ssh-key lacks), parsing and
//! verifying armored SSHSIG signatures, fingerprints.

use super::*;

// ---------------------------------------------------------------------------------------------
// Keys and raw signatures.

/// Read an OpenSSH private key, decrypting it when it is passphrase-protected (passphrase from
/// [`PASSPHRASE_ENV`], else a prompt on the terminal).
///
/// # Errors
/// [`Error::Io`] when unreadable; [`Error::InvalidInput`] (exit 2) when it is not an OpenSSH
/// private key, the passphrase is wrong, or it is encrypted and no passphrase can be had.
pub fn load_private_key(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let invalid = |message: String| Error::InvalidInput {
        path: path.to_path_buf(),
        message,
    };
    if text.contains("-----BEGIN RSA PRIVATE KEY-----")
        || text.contains("-----BEGIN EC PRIVATE KEY-----")
        || text.contains("-----BEGIN PRIVATE KEY-----")
    {
        return Err(invalid(
            "a PEM key; prodready reads OpenSSH private keys (convert a copy with \
             `ssh-keygen -p -f KEY`, which rewrites it in the OpenSSH format)"
                .into(),
        ));
    }
    let key = match PrivateKey::from_openssh(&text) {
        Ok(k) => k,
        Err(e) => {
            return openssh::read_unencrypted(&text)
                .ok_or_else(|| invalid(format!("not an OpenSSH private key: {e}")));
        }
    };
    if !key.is_encrypted() {
        return Ok(key);
    }
    let passphrase = match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => p,
        Err(_) if std::io::IsTerminal::is_terminal(&std::io::stdin()) => {
            rpassword::prompt_password(format!("Passphrase for {}: ", path.display()))
                .map_err(|e| Error::io("reading the passphrase for", path, e))?
        }
        Err(_) => {
            return Err(invalid(format!(
                "the key is passphrase-protected: set {PASSPHRASE_ENV} or run on a terminal"
            )));
        }
    };
    let wrong = || invalid("cannot decrypt the key: wrong passphrase".into());
    match key.decrypt(passphrase.as_bytes()) {
        Ok(k) => Ok(k),
        Err(ssh_key::Error::Crypto) => Err(wrong()),
        Err(e) => match openssh::decrypt(&key, passphrase.as_bytes()) {
            Ok(k) => Ok(k),
            Err(openssh::DecryptError::WrongPassphrase) => Err(wrong()),
            Err(openssh::DecryptError::Unsupported(m)) => Err(invalid(format!(
                "cannot decrypt the key: {e} ({m}); sign with `ssh-keygen -Y sign` instead \
                 (prodready sign --print-statement)"
            ))),
        },
    }
}

/// Sign `message` with `key` as an armored SSHSIG in the [`NAMESPACE`] namespace (SHA-512,
/// as `ssh-keygen -Y sign` does).
///
/// # Errors
/// [`Error::Internal`] when the key type cannot sign.
pub fn sign_message(key: &PrivateKey, message: &[u8]) -> Result<String> {
    let fail = |e: String| Error::Internal(format!("signing with {} key: {e}", key.algorithm()));
    let sig = match key.key_data() {
        ssh_key::private::KeypairData::Rsa(rsa_key) => {
            sign_rsa(key, rsa_key, message).map_err(fail)?
        }
        _ => key
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .map_err(|e| fail(e.to_string()))?,
    };
    sig.to_pem(LineEnding::LF)
        .map_err(|e| Error::Internal(format!("encoding the signature: {e}")))
}

/// RSA signing done here (RSASSA-PKCS1-v1_5 with SHA-512, "rsa-sha2-512", as ssh-keygen
/// does): ssh-key 0.6 builds the RSA private key from `p` twice instead of `p` and `q`, so its
/// own RSA signing always fails.
pub(super) fn sign_rsa(
    key: &PrivateKey,
    kp: &ssh_key::private::RsaKeypair,
    message: &[u8],
) -> std::result::Result<SshSig, String> {
    use rsa::signature::{SignatureEncoding, Signer};
    let big = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or_else(|| "malformed RSA key component".to_string())
    };
    let private = rsa::RsaPrivateKey::from_components(
        big(&kp.public.n)?,
        big(&kp.public.e)?,
        big(&kp.private.d)?,
        vec![big(&kp.private.p)?, big(&kp.private.q)?],
    )
    .map_err(|e| format!("invalid RSA key: {e}"))?;
    let signed =
        SshSig::signed_data(NAMESPACE, HashAlg::Sha512, message).map_err(|e| e.to_string())?;
    let signing_key = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private);
    let raw = signing_key
        .try_sign(&signed)
        .map_err(|e| format!("RSA signing failed: {e}"))?;
    let signature = ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        raw.to_vec(),
    )
    .map_err(|e| e.to_string())?;
    SshSig::new(
        key.public_key().key_data().clone(),
        NAMESPACE,
        HashAlg::Sha512,
        signature,
    )
    .map_err(|e| e.to_string())
}

/// Parse an armored SSHSIG and check its namespace is [`NAMESPACE`].
///
/// # Errors
/// A message when it is not an SSH signature or has another namespace.
pub fn parse_sshsig(armored: &str) -> std::result::Result<SshSig, String> {
    let sig = SshSig::from_pem(armored.trim().as_bytes())
        .map_err(|e| format!("not an armored SSH signature: {e}"))?;
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "signature namespace is \"{}\", expected \"{NAMESPACE}\"",
            sig.namespace()
        ));
    }
    Ok(sig)
}

/// Check an armored SSHSIG over `message`; returns the signing public key.
///
/// # Errors
/// A message when malformed, in another namespace, or not a valid signature of `message`.
pub fn verify_message(armored: &str, message: &[u8]) -> std::result::Result<PublicKey, String> {
    let sig = parse_sshsig(armored)?;
    let key = PublicKey::new(sig.public_key().clone(), "");
    key.verify(NAMESPACE, message, &sig).map_err(|e| {
        format!("the signature does not match the signed text (altered signature or text): {e}")
    })?;
    Ok(key)
}

/// SHA-256 fingerprint in OpenSSH form (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The principal a signature is made as: `signer` when given, else the comment of the private
/// key (loaded from `key_path`), as `ssh-keygen` writes `user@host` there.
///
/// # Errors
/// [`Error::Usage`] when neither names anyone.
pub fn signer_or_comment(
    signer: Option<String>,
    private: &PrivateKey,
    key_path: &Path,
) -> Result<String> {
    let signer = signer.unwrap_or_else(|| private.comment().to_string());
    if signer.trim().is_empty() {
        return Err(Error::Usage(format!(
            "{} has no comment to use as the signer: pass --signer PRINCIPAL (as in allowed_signers)",
            key_path.display()
        )));
    }
    Ok(signer)
}
