//! The PKCS#11 key store: a hospital's HSM (or a cloud HSM, or SoftHSM2 in tests) holds each
//! issuer's P-256 private keys; vaxcred only asks it to sign. Implements the same
//! [`KeyStore`] seam as the file store, so the worker and the HTTP surface do not know which one
//! they use.
//!
//! On the token, an issuer's keys are key pairs labelled `vaxcred:{issuer slug}` whose `CKA_ID`
//! is the key's `kid` (RFC 7638 thumbprint, computed from `CKA_EC_POINT`). Private keys are
//! generated on the token as sensitive and non-extractable. Which key is active is the database's
//! business (`signing_keys.status`), so every replica agrees.
//!
//! Signing: `CKM_ECDSA` over the SHA-256 digest of the JWS signing input returns raw `R‖S`
//! (64 bytes for P-256) — exactly the JWS ES256 form, no DER to convert (rule 19).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::{Digest, Sha256};
use shc::{Jwk, Jwks, JwsSigner};
use store::{Issuer, KeyStatus, Store};

use crate::error::{Error, Result};
use crate::keystore::{
    active_signer_in, public_jwks_in, register_keys, IssuerKeys, KeyMap, KeyStore,
};

/// Name written to `signing_keys.key_store` for keys on a PKCS#11 token.
pub const PKCS11_STORE: &str = "pkcs11";
/// DER of the P-256 curve OID (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of our keys.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Where the token is and how to log in. The PIN is a secret: never logged, never in `Debug`.
pub struct Pkcs11Config<'a> {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: &'a Path,
    /// The token's label.
    pub token_label: &'a str,
    /// The user PIN.
    pub pin: &'a str,
}

struct Token {
    // Keeps the library loaded and initialized for as long as the session lives.
    _ctx: Pkcs11,
    // One logged-in session: `Session` is `Send` but not `Sync`, and a P-256 signature on an HSM
    // is short, so one mutex-guarded session is simpler than a pool.
    session: Mutex<Session>,
}

/// Private keys on a PKCS#11 token.
pub struct Pkcs11KeyStore {
    token: Arc<Token>,
    issuers: KeyMap<TokenSigner>,
}

impl std::fmt::Debug for Pkcs11KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11KeyStore").finish_non_exhaustive()
    }
}

/// Signs on the token with one private key.
pub struct TokenSigner {
    token: Arc<Token>,
    kid: String,
    handle: ObjectHandle,
}

impl JwsSigner for TokenSigner {
    fn kid(&self) -> &str {
        &self.kid
    }

    fn sign_es256(&self, signing_input: &[u8]) -> std::result::Result<[u8; 64], shc::Error> {
        let digest = Sha256::digest(signing_input);
        let session = self
            .token
            .session
            .lock()
            .map_err(|_| shc::Error::Key("PKCS#11 session poisoned".into()))?;
        let sig = session
            .sign(&Mechanism::Ecdsa, self.handle, &digest)
            .map_err(|_| shc::Error::Key("PKCS#11 signing failed".into()))?;
        <[u8; 64]>::try_from(sig.as_slice())
            .map_err(|_| shc::Error::Key("PKCS#11 signature is not 64 bytes".into()))
    }
}

fn hsm(_: cryptoki::error::Error) -> Error {
    Error::KeyStore("PKCS#11 token error")
}

fn label_of(issuer: &Issuer) -> Vec<u8> {
    format!("vaxcred:{}", issuer.slug).into_bytes()
}

impl Pkcs11KeyStore {
    /// Loads the module, finds the token by label, logs in, and loads each issuer's keys
    /// (generating a first key pair on the token for an issuer that has none).
    pub async fn open(
        config: &Pkcs11Config<'_>,
        store: &Store,
        issuers: &[Issuer],
    ) -> Result<Pkcs11KeyStore> {
        let ctx = Pkcs11::new(config.module).map_err(hsm)?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another store in this process opened the module first: its state is shared.
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(hsm(e)),
        }
        let mut slot = None;
        for s in ctx.get_slots_with_token().map_err(hsm)? {
            let info = ctx.get_token_info(s).map_err(hsm)?;
            if info.label().trim_end() == config.token_label {
                slot = Some(s);
                break;
            }
        }
        let slot = slot.ok_or(Error::KeyStore("no PKCS#11 token with this label"))?;
        let session = ctx.open_rw_session(slot).map_err(hsm)?;
        let pin = AuthPin::from(config.pin.to_owned());
        match session.login(UserType::User, Some(&pin)) {
            // PKCS#11 logins are per application: another store of this process logged in.
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => {}
            Err(e) => {
                // The error names the PKCS#11 function and return value, never the PIN.
                tracing::warn!(error = %e, "PKCS#11 login failed");
                return Err(Error::KeyStore("PKCS#11 login failed"));
            }
        }
        let ks = Pkcs11KeyStore {
            token: Arc::new(Token {
                _ctx: ctx,
                session: Mutex::new(session),
            }),
            issuers: RwLock::new(HashMap::new()),
        };
        for issuer in issuers {
            ks.load_issuer(store, issuer).await?;
        }
        Ok(ks)
    }

    /// (Re)loads `issuer`'s keys from the token, generating the first pair if it has none, and
    /// registers public keys missing from `signing_keys`.
    pub async fn load_issuer(&self, store: &Store, issuer: &Issuer) -> Result<()> {
        let mut found = self.find_keys(issuer)?;
        if found.is_empty() {
            found.push(self.generate(issuer)?);
        }
        let known = store.list_signing_keys(&issuer.id).await?;
        let active_kid = known
            .iter()
            .find(|k| k.status == KeyStatus::Active && found.iter().any(|(j, _)| j.kid == k.kid))
            .map(|k| k.kid.clone());
        // Newest unregistered key wins when the database names none (first start).
        let active_kid = match active_kid {
            Some(kid) => kid,
            None => found
                .last()
                .map(|(j, _)| j.kid.clone())
                .ok_or(Error::KeyStore("no key on the token"))?,
        };
        let public: Vec<Jwk> = found.iter().map(|(j, _)| j.clone()).collect();
        register_keys(store, &issuer.id, &public, &active_kid, PKCS11_STORE).await?;
        let (active_jwk, handle) = found
            .iter()
            .find(|(j, _)| j.kid == active_kid)
            .cloned()
            .ok_or(Error::KeyStore("the active key is not on the token"))?;
        let mut public = vec![active_jwk.clone()];
        public.extend(
            found
                .into_iter()
                .map(|(j, _)| j)
                .filter(|j| j.kid != active_kid),
        );
        let keys = IssuerKeys {
            active: Arc::new(TokenSigner {
                token: self.token.clone(),
                kid: active_jwk.kid,
                handle,
            }),
            public,
        };
        self.issuers
            .write()
            .map_err(|_| Error::KeyStore("key cache poisoned"))?
            .insert(issuer.id.clone(), keys);
        Ok(())
    }

    /// Generates a new key pair on the token, registers it as the active key, and returns its
    /// `kid` (the caller retires the previous active key).
    pub async fn rotate(&self, store: &Store, issuer: &Issuer) -> Result<String> {
        let (jwk, _) = self.generate(issuer)?;
        register_keys(
            store,
            &issuer.id,
            std::slice::from_ref(&jwk),
            &jwk.kid,
            PKCS11_STORE,
        )
        .await?;
        for key in store.list_signing_keys(&issuer.id).await? {
            if key.status == KeyStatus::Active && key.kid != jwk.kid {
                store
                    .set_signing_key_status(&issuer.id, &key.kid, KeyStatus::Retired)
                    .await?;
            }
        }
        self.load_issuer(store, issuer).await?;
        Ok(jwk.kid)
    }

    /// Destroys the private key `kid` on the token (the public object stays, so the key is still
    /// listed and its public half can be re-read).
    pub async fn destroy(&self, store: &Store, issuer: &Issuer, kid: &str) -> Result<()> {
        {
            let session = self.session()?;
            let handles = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label_of(issuer)),
                    Attribute::Id(kid.as_bytes().to_vec()),
                ])
                .map_err(hsm)?;
            for h in handles {
                session.destroy_object(h).map_err(hsm)?;
            }
        }
        self.load_issuer(store, issuer).await
    }

    fn session(&self) -> Result<std::sync::MutexGuard<'_, Session>> {
        self.token
            .session
            .lock()
            .map_err(|_| Error::KeyStore("PKCS#11 session poisoned"))
    }

    /// Every (public JWK, private key handle) of `issuer` on the token, oldest `CKA_ID` order
    /// is not meaningful, so callers pick the active one by `kid`.
    fn find_keys(&self, issuer: &Issuer) -> Result<Vec<(Jwk, ObjectHandle)>> {
        let session = self.session()?;
        let privates = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(label_of(issuer)),
            ])
            .map_err(hsm)?;
        let mut out = Vec::new();
        for handle in privates {
            let attrs = session
                .get_attributes(handle, &[AttributeType::Id])
                .map_err(hsm)?;
            let Some(Attribute::Id(id)) = attrs.into_iter().next() else {
                continue;
            };
            let publics = session
                .find_objects(&[
                    Attribute::Class(ObjectClass::PUBLIC_KEY),
                    Attribute::Label(label_of(issuer)),
                    Attribute::Id(id.clone()),
                ])
                .map_err(hsm)?;
            let Some(public) = publics.into_iter().next() else {
                continue;
            };
            let jwk = public_jwk(&session, public)?;
            if jwk.kid.as_bytes() != id.as_slice() {
                return Err(Error::KeyStore("a token key's CKA_ID is not its kid"));
            }
            out.push((jwk, handle));
        }
        Ok(out)
    }

    fn generate(&self, issuer: &Issuer) -> Result<(Jwk, ObjectHandle)> {
        let session = self.session()?;
        let label = label_of(issuer);
        // A temporary random CKA_ID; replaced by the kid once the public point is known.
        let mut tmp = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut tmp);
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.clone()),
            Attribute::Id(tmp.to_vec()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label),
            Attribute::Id(tmp.to_vec()),
        ];
        let (public, private) = session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(hsm)?;
        let jwk = public_jwk(&session, public)?;
        let id = vec![Attribute::Id(jwk.kid.as_bytes().to_vec())];
        session.update_attributes(public, &id).map_err(hsm)?;
        session.update_attributes(private, &id).map_err(hsm)?;
        tracing::info!(kid = %jwk.kid, "generated a signing key on the PKCS#11 token");
        Ok((jwk, private))
    }
}

/// The public JWK of a token's EC public key (from `CKA_EC_POINT`, a DER OCTET STRING around the
/// uncompressed point `04‖X‖Y`; some tokens return the bare point).
fn public_jwk(session: &Session, public: ObjectHandle) -> Result<Jwk> {
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint])
        .map_err(hsm)?;
    let Some(Attribute::EcPoint(point)) = attrs.into_iter().next() else {
        return Err(Error::KeyStore("token key has no EC point"));
    };
    let bare: &[u8] = match point.as_slice() {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        p if p.len() == 65 => p,
        _ => {
            return Err(Error::KeyStore(
                "token key is not an uncompressed P-256 point",
            ))
        }
    };
    let (x, y) = match bare {
        [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
        _ => {
            return Err(Error::KeyStore(
                "token key is not an uncompressed P-256 point",
            ))
        }
    };
    let b64 =
        |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let (x, y) = (b64(x), b64(y));
    let kid = shc::keys::thumbprint(&x, &y);
    let value = serde_json::json!({
        "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": x, "y": y,
    });
    serde_json::from_value(value).map_err(|_| Error::KeyStore("token key is not a valid JWK"))
}

impl KeyStore for Pkcs11KeyStore {
    fn active_signer(&self, issuer_id: &str) -> Result<Arc<dyn JwsSigner>> {
        active_signer_in(&self.issuers, issuer_id)
    }

    fn public_jwks(&self, issuer_id: &str) -> Result<Jwks> {
        public_jwks_in(&self.issuers, issuer_id)
    }
}
