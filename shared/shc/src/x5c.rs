//! X.509 certificate chains in a JWK's `x5c` (rule 23).
//!
//! An issuer that holds a certificate for its signing key SHALL publish it in `x5c`: standard base64
//! (not base64url) DER, leaf first. A verifier with PKI support checks that the leaf's key is the
//! JWK's key, that the leaf names the issuer as a SubjectAltName URI equal to `iss`, and that the
//! chain holds together. This module does those checks for one JWK at a given time; deciding
//! whether the chain's root is a trust anchor is left to the caller (it is a trust decision, like
//! the issuer directory).
//!
//! What is checked, each failure an [`ProblemKind::InvalidKeyX5c`] error:
//! - `x5c` is a non-empty array of strings, each standard base64 of exactly one DER certificate;
//! - the leaf's key is EC P-256 (rule 21) and equal to the JWK's `x`/`y`;
//! - when `iss` is given, the leaf has a SubjectAltName `uniformResourceIdentifier` equal to it
//!   (a DNS name is not enough: the issuer is a URL, not a host);
//! - each certificate is signed by the next one's key, each signer is a CA (basicConstraints), the
//!   last certificate is self-signed — ECDSA over P-256/P-384/P-521 with SHA-256/384/512 in any
//!   pairing (the spec's example chains sign with SHA-256 from P-384 and P-521 keys);
//! - every certificate is within its validity period at the given time. Expired chains are common
//!   in practice (spec-checklist §R: even the spec's own example chain expired in 2022).
//!
//! Problem texts name the certificate by position (`x5c[1]`) and the rule; they carry no
//! certificate contents beyond validity dates.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::Digest as _;
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::{
    Oid, OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
};
use x509_parser::prelude::{FromDer as _, GeneralName};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::b64;
use crate::error::{Problem, ProblemKind};

/// Checks the `x5c` member of a public JWK (rule 23) at `at_unix_secs` (seconds since the Unix
/// epoch), with the card's issuer `iss` when known.
///
/// Returns no problems when the JWK has no `x5c`. Otherwise returns every problem found, so a
/// validator can show them all at once; the JWK members other than `x5c` are checked by
/// [`crate::keys::check_jwk`], not here.
pub fn check_x5c(jwk: &serde_json::Value, iss: Option<&str>, at_unix_secs: i64) -> Vec<Problem> {
    let Some(x5c) = jwk.get("x5c") else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let Some(entries) = x5c.as_array() else {
        problems.push(error(
            "JWK `x5c` must be an array of base64 DER certificates (rule 23)",
        ));
        return problems;
    };
    if entries.is_empty() {
        problems.push(error(
            "JWK `x5c` is empty; it must hold the key's certificate chain, leaf first (rule 23)",
        ));
        return problems;
    }

    let ders: Vec<Option<Vec<u8>>> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| decode_entry(i, entry, &mut problems))
        .collect();
    let certs: Vec<Option<X509Certificate<'_>>> = ders
        .iter()
        .enumerate()
        .map(|(i, der)| {
            der.as_deref()
                .and_then(|der| parse_cert(i, der, &mut problems))
        })
        .collect();

    if let Some(Some(leaf)) = certs.first() {
        check_leaf_key(leaf, jwk, &mut problems);
        if let Some(iss) = iss {
            check_leaf_san(leaf, iss, &mut problems);
        }
    }
    check_chain(&certs, &mut problems);
    for (i, cert) in certs.iter().enumerate() {
        if let Some(cert) = cert {
            check_validity(i, cert, at_unix_secs, &mut problems);
        }
    }
    problems
}

fn error(detail: impl Into<String>) -> Problem {
    Problem::error(ProblemKind::InvalidKeyX5c, detail)
}

/// Standard base64 → DER bytes. base64url is called out on its own: it is the usual slip, since
/// every other binary member of a JWK is base64url.
fn decode_entry(
    i: usize,
    entry: &serde_json::Value,
    problems: &mut Vec<Problem>,
) -> Option<Vec<u8>> {
    let Some(text) = entry.as_str() else {
        problems.push(error(format!(
            "x5c[{i}] is not a string; `x5c` entries are base64 DER certificates (rule 23)"
        )));
        return None;
    };
    match STANDARD.decode(text) {
        Ok(der) => Some(der),
        Err(_) => {
            let url = URL_SAFE.decode(text).is_ok() || URL_SAFE_NO_PAD.decode(text).is_ok();
            problems.push(error(if url {
                format!("x5c[{i}] is base64url; `x5c` entries must be standard base64 (rule 23)")
            } else {
                format!("x5c[{i}] is not valid standard base64 (rule 23)")
            }));
            None
        }
    }
}

fn parse_cert<'a>(
    i: usize,
    der: &'a [u8],
    problems: &mut Vec<Problem>,
) -> Option<X509Certificate<'a>> {
    match X509Certificate::from_der(der) {
        Ok((rest, cert)) => {
            if !rest.is_empty() {
                problems.push(error(format!(
                    "x5c[{i}] has bytes after the DER certificate; each entry is exactly one certificate (rule 23)"
                )));
            }
            if cert.signature_algorithm != cert.tbs_certificate.signature {
                problems.push(error(format!(
                    "x5c[{i}] signatureAlgorithm differs from the signature field it signs (RFC 5280 §4.1.1.2)"
                )));
            }
            Some(cert)
        }
        Err(_) => {
            problems.push(error(format!(
                "x5c[{i}] is not a DER-encoded X.509 certificate (rule 23)"
            )));
            None
        }
    }
}

fn check_leaf_key(
    leaf: &X509Certificate<'_>,
    jwk: &serde_json::Value,
    problems: &mut Vec<Problem>,
) {
    let spki = leaf.public_key();
    if ec_curve(spki) != Some(Curve::P256) {
        problems.push(error(
            "x5c[0] (leaf) public key is not EC P-256, so it cannot be the JWK's key (rules 21, 23)",
        ));
        return;
    }
    let Ok(leaf_key) = p256::PublicKey::from_sec1_bytes(&spki.subject_public_key.data) else {
        problems.push(error(
            "x5c[0] (leaf) public key is not a valid P-256 point (rule 23)",
        ));
        return;
    };
    let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&leaf_key, false);
    let coord = |name: &str| jwk.get(name).and_then(|v| v.as_str()).and_then(b64::decode);
    let (Some(x), Some(y)) = (coord("x"), coord("y")) else {
        problems.push(error(
            "JWK `x`/`y` are missing or not base64url, so the x5c leaf key cannot be matched (rule 23)",
        ));
        return;
    };
    if point.x().map(|c| c.to_vec()) != Some(x) || point.y().map(|c| c.to_vec()) != Some(y) {
        problems.push(error(
            "x5c[0] (leaf) public key does not match the JWK `x`/`y` (rule 23)",
        ));
    }
}

fn check_leaf_san(leaf: &X509Certificate<'_>, iss: &str, problems: &mut Vec<Problem>) {
    let san = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san,
        Ok(None) => {
            problems.push(error(
                "x5c[0] (leaf) has no SubjectAltName; it must hold a uniformResourceIdentifier equal to `iss` (rule 23)",
            ));
            return;
        }
        Err(_) => {
            problems.push(error(
                "x5c[0] (leaf) SubjectAltName extension is malformed or repeated (rule 23)",
            ));
            return;
        }
    };
    let mut uris = san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        });
    let mut any_uri = false;
    if uris.any(|uri| {
        any_uri = true;
        uri == iss
    }) {
        return;
    }
    problems.push(error(if any_uri {
        "x5c[0] (leaf) SubjectAltName uniformResourceIdentifier does not match `iss` (rule 23)"
    } else {
        "x5c[0] (leaf) SubjectAltName has no uniformResourceIdentifier (a DNS name is not enough); it must hold one equal to `iss` (rule 23)"
    }));
}

/// Each certificate must be signed by the next one's key, and the last by its own: the chain runs
/// from the leaf up to a self-signed root. Links with an unparsable end were already reported.
fn check_chain(certs: &[Option<X509Certificate<'_>>], problems: &mut Vec<Problem>) {
    for (i, pair) in certs.windows(2).enumerate() {
        let [Some(cert), Some(signer)] = pair else {
            continue;
        };
        let next = i + 1;
        if !is_ca(signer) {
            problems.push(error(format!(
                "x5c[{next}] signs x5c[{i}] but is not a CA (basicConstraints cA is not set): the chain is invalid (rule 23)"
            )));
        }
        if let Err(why) = verify_signed_by(cert, signer.public_key()) {
            problems.push(error(format!(
                "x5c[{i}] is not signed by the key of x5c[{next}] ({}): the chain is broken (rule 23)",
                why.text()
            )));
        }
    }
    let last = certs.len().saturating_sub(1);
    if let Some(Some(root)) = certs.last() {
        if let Err(why) = verify_signed_by(root, root.public_key()) {
            problems.push(error(format!(
                "x5c[{last}], the last certificate, is not self-signed ({}): the chain does not end in a root (rule 23)",
                why.text()
            )));
        } else if last > 0 && !is_ca(root) {
            problems.push(error(format!(
                "x5c[{last}], the root, is not a CA (basicConstraints cA is not set): the chain is invalid (rule 23)"
            )));
        }
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

fn check_validity(i: usize, cert: &X509Certificate<'_>, at: i64, problems: &mut Vec<Problem>) {
    let validity = cert.validity();
    if validity.not_before.timestamp() > at {
        problems.push(error(format!(
            "x5c[{i}] certificate is not yet valid (notBefore {}) at the verification time (rule 23)",
            validity.not_before.to_datetime().date()
        )));
    }
    if validity.not_after.timestamp() < at {
        problems.push(error(format!(
            "x5c[{i}] certificate expired (notAfter {}) before the verification time (rule 23)",
            validity.not_after.to_datetime().date()
        )));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// Size of a field element, the width ECDSA reads a digest into.
    fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// The named curve of an EC key; `None` for any other key type or curve.
fn ec_curve(spki: &SubjectPublicKeyInfo<'_>) -> Option<Curve> {
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return None;
    }
    let curve = Oid::try_from(spki.algorithm.parameters.as_ref()?).ok()?;
    [
        (OID_EC_P256, Curve::P256),
        (OID_NIST_EC_P384, Curve::P384),
        (OID_NIST_EC_P521, Curve::P521),
    ]
    .into_iter()
    .find(|(oid, _)| *oid == curve)
    .map(|(_, c)| c)
}

/// Why a signature did not verify; the text goes into the problem.
#[derive(Debug, Clone, Copy)]
enum LinkError {
    Algorithm,
    SignerKey,
    SignatureEncoding,
    Mismatch,
}

impl LinkError {
    fn text(self) -> &'static str {
        match self {
            LinkError::Algorithm => "signature algorithm is not ECDSA with SHA-256/384/512",
            LinkError::SignerKey => "signer key is not EC P-256/P-384/P-521",
            LinkError::SignatureEncoding => "signature is not a DER ECDSA signature",
            LinkError::Mismatch => "signature does not verify",
        }
    }
}

fn verify_signed_by(
    cert: &X509Certificate<'_>,
    signer: &SubjectPublicKeyInfo<'_>,
) -> Result<(), LinkError> {
    let tbs = cert.tbs_certificate.as_ref();
    let alg = &cert.signature_algorithm.algorithm;
    let digest: Vec<u8> = if *alg == OID_SIG_ECDSA_WITH_SHA256 {
        sha2::Sha256::digest(tbs).to_vec()
    } else if *alg == OID_SIG_ECDSA_WITH_SHA384 {
        sha2::Sha384::digest(tbs).to_vec()
    } else if *alg == OID_SIG_ECDSA_WITH_SHA512 {
        sha2::Sha512::digest(tbs).to_vec()
    } else {
        return Err(LinkError::Algorithm);
    };
    let curve = ec_curve(signer).ok_or(LinkError::SignerKey)?;
    if cert.signature_value.unused_bits != 0 {
        return Err(LinkError::SignatureEncoding);
    }
    let sig: &[u8] = &cert.signature_value.data;
    let point: &[u8] = &signer.subject_public_key.data;
    // ECDSA uses the digest's leftmost field-size bits as an integer (FIPS 186-5 §6.4.1). A digest
    // shorter than the field (SHA-256 under P-521) is that integer as is, so zero-pad it on the
    // left: `ecdsa` 0.16 refuses a prehash under half the field size rather than pad it itself.
    let prehash: Vec<u8> =
        std::iter::repeat_n(0u8, curve.field_bytes().saturating_sub(digest.len()))
            .chain(digest)
            .collect();

    macro_rules! verify_on {
        ($curve:ty) => {{
            let key = ecdsa::VerifyingKey::<$curve>::from_sec1_bytes(point)
                .map_err(|_| LinkError::SignerKey)?;
            let sig = ecdsa::Signature::<$curve>::from_der(sig)
                .map_err(|_| LinkError::SignatureEncoding)?;
            key.verify_prehash(&prehash, &sig)
                .map_err(|_| LinkError::Mismatch)
        }};
    }
    match curve {
        Curve::P256 => verify_on!(p256::NistP256),
        Curve::P384 => verify_on!(p384::NistP384),
        Curve::P521 => verify_on!(p521::NistP521),
    }
}
