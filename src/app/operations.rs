//! The protocol operations over this node's ports: each builds the protocol's view of the app (the
//! narrow ports an operation uses, the settings it needs) for one request. Handlers call these and
//! then one method of what they return.

use std::time::Duration;

use super::App;
use crate::crypto::signing::KeyRing;
use crate::protocol::admin::{Actor, Administration};
use crate::protocol::audit::{Audit, RequestContext};
use crate::protocol::bearer::BearerCheck;
use crate::protocol::client_auth::AssertionContext;
use crate::protocol::discovery;
use crate::protocol::enterprise::Enterprises;
use crate::protocol::factors::SecondFactors;
use crate::protocol::grants::GrantPorts;
use crate::protocol::interaction::Interactions;
use crate::protocol::issuer::TokenIssuer;
use crate::protocol::limits;
use crate::protocol::login::PasswordLogin;
use crate::protocol::logout::Logouts;
use crate::protocol::lost_factor::LostFactor;
use crate::protocol::my_account::MyAccount;
use crate::protocol::passkeys::Passkeys;
use crate::protocol::phone_change::PhoneChange;
use crate::protocol::proofing::FaceProofing;
use crate::protocol::recovery::Recovery;
use crate::protocol::registration::Registration;
use crate::protocol::roles::Withdrawal;
use crate::protocol::session::{SessionPolicy, Sessions};
use crate::protocol::sms_code::SmsCodes;
use crate::protocol::sms_login::SmsLogin;
use crate::protocol::token_endpoint::TokenEndpoint;

/// RFC 7523 §3: "The JWT MUST contain an "aud" (audience) claim containing a value that identifies
/// the authorization server as an intended audience": the issuer, or the endpoint's URL.
pub(super) fn assertion_audiences(issuer: &str) -> Vec<String> {
    let base = issuer.trim_end_matches('/');
    vec![
        issuer.to_owned(),
        format!("{base}{}", discovery::TOKEN),
        format!("{base}{}", discovery::INTROSPECT),
        format!("{base}{}", discovery::REVOKE),
        format!("{base}{}", discovery::DEVICE_AUTHORIZATION),
    ]
}

/// What administration works on, from the parts the server (`App`) and the CLI (`cli::Admin`)
/// both hold.
pub struct AdminParts<'a> {
    pub store: &'a dyn crate::store::Store,
    pub ephemeral: &'a dyn crate::store::Ephemeral,
    pub client_secrets: &'a crate::crypto::client_secret::ClientSecretBox,
    pub identities: &'a crate::protocol::accounts::Identities,
    pub keys: &'a crate::protocol::keys::Keys,
    pub subjects: &'a crate::crypto::subject::SubjectCodec,
    pub audit: &'a super::Auditor,
    pub sms: Option<SmsCodes<'a>>,
}

impl<'a> AdminParts<'a> {
    /// The administrative operations for `actor` (docs/administration.md).
    pub fn administration(
        &self,
        actor: &'a Actor,
        context: &'a RequestContext,
    ) -> Administration<'a> {
        Administration {
            actor,
            clients: self.store,
            ephemeral: self.ephemeral,
            client_secrets: self.client_secrets,
            identities: self.identities,
            admins: self.store,
            factors: self.store,
            refresh: self.store,
            sessions: Sessions {
                rows: self.store,
                clients: self.store,
                outbox: self.store,
                ephemeral: self.ephemeral,
                subjects: self.subjects,
                audit: self.audit,
            },
            keys: self.keys,
            audit_log: self.store,
            audit: Audit {
                sink: self.audit,
                context,
            },
            sms: self.sms,
        }
    }
}

impl App {
    /// The administrative operations for `actor`, with a request's context.
    pub fn administration<'a>(
        &'a self,
        actor: &'a Actor,
        context: &'a RequestContext,
    ) -> Administration<'a> {
        AdminParts {
            store: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            client_secrets: &self.client_secrets,
            identities: &self.identities,
            keys: &self.keys,
            subjects: &self.subjects,
            audit: &self.audit,
            sms: self.sms_enabled().then(|| self.sms_codes()),
        }
        .administration(actor, context)
    }

    /// The console's sign-ins and idle-limited sessions.
    pub fn console(&self) -> crate::protocol::admin::console::Console<'_> {
        crate::protocol::admin::console::Console {
            ephemeral: self.ephemeral.as_ref(),
            admins: self.store.as_ref(),
            idle: Duration::from_secs(self.config.admin.console_idle_secs),
            code_memory: Duration::from_secs(self.config.tokens.access_token_secs),
        }
    }

    /// Seconds since the epoch by this app's clock: the `now` handed to the rules.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The configured idle and absolute session limits.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_secs: self.config.session.idle_secs,
            absolute_secs: self.config.session.absolute_secs,
        }
    }

    /// Session ending and sweeping over this node's ports.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions {
            rows: self.store.as_ref(),
            clients: self.store.as_ref(),
            outbox: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            subjects: &self.subjects,
            audit: &self.audit,
        }
    }

    /// The audit sink with a request's context.
    pub fn audit<'a>(&'a self, context: &'a RequestContext) -> Audit<'a> {
        Audit {
            sink: &self.audit,
            context,
        }
    }

    /// The stages of an authorization request (login, consent, organisation, code).
    pub fn interactions<'a>(&'a self, ring: &'a KeyRing) -> Interactions<'a> {
        Interactions {
            issuer: &self.config.server.issuer,
            ring,
            subjects: &self.subjects,
            ephemeral: self.ephemeral.as_ref(),
            consents: self.store.as_ref(),
            orgs: self.store.as_ref(),
            sessions: self.store.as_ref(),
            identities: &self.identities,
            factors: self.store.as_ref(),
            face: self.face_enabled(),
            two_factors_for_all: self.config.second_factor.required_for_all,
            policy: self.session_policy(),
            code_ttl: Duration::from_secs(self.config.tokens.code_secs),
            open_limit: limits::Rule {
                name: "interaction_ip",
                limit: self.config.limits.interactions_per_ip_per_min,
                window_secs: 60,
            },
        }
    }

    /// Password login for a request from `context`.
    pub fn password_login<'a>(&'a self, context: &'a RequestContext) -> PasswordLogin<'a> {
        PasswordLogin {
            identities: &self.identities,
            ephemeral: self.ephemeral.as_ref(),
            sessions: self.sessions(),
            audit: self.audit(context),
            limits: &self.config.limits,
            policy: self.session_policy(),
            absolute_secs: i64::try_from(self.config.session.absolute_secs).unwrap_or(i64::MAX),
            channels: &self.config.session,
        }
    }

    /// SMS codes over this node's ephemeral store and the configured gateway.
    pub fn sms_codes(&self) -> SmsCodes<'_> {
        SmsCodes {
            ephemeral: self.ephemeral.as_ref(),
            gateway: self.outside.sms.as_ref(),
            key: &self.sms_key,
            config: &self.config.sms,
        }
    }

    /// Sign-in by SMS code for a request from `context`.
    pub fn sms_login<'a>(&'a self, context: &'a RequestContext) -> SmsLogin<'a> {
        SmsLogin {
            login: self.password_login(context),
            codes: self.sms_codes(),
        }
    }

    /// Self-service registration for a request from `context`.
    pub fn registration<'a>(&'a self, context: &'a RequestContext) -> Registration<'a> {
        Registration {
            identities: &self.identities,
            people: self.outside.people.as_ref(),
            codes: self.sms_codes(),
            ephemeral: self.ephemeral.as_ref(),
            sealer: &self.draft_sealer,
            audit: self.audit(context),
            config: &self.config.registration,
            limit: limits::Rule {
                name: "register_ip",
                limit: self.config.limits.register_per_ip_per_hour,
                window_secs: 3600,
            },
        }
    }

    /// Password recovery for a request from `context`.
    pub fn recovery<'a>(&'a self, context: &'a RequestContext) -> Recovery<'a> {
        Recovery {
            identities: &self.identities,
            codes: self.sms_codes(),
            ephemeral: self.ephemeral.as_ref(),
            sealer: &self.draft_sealer,
            sessions: self.sessions(),
            refresh: self.store.as_ref(),
            audit: self.audit(context),
            draft_secs: self.config.registration.draft_secs,
            limit: limits::Rule {
                name: "recover_ip",
                limit: self.config.limits.recover_per_ip_per_hour,
                window_secs: 3600,
            },
        }
    }

    /// The personal page's operations for a request from `context`.
    pub fn my_account<'a>(&'a self, context: &'a RequestContext) -> MyAccount<'a> {
        MyAccount {
            identities: &self.identities,
            sessions: self.sessions(),
            consents: self.store.as_ref(),
            clients: &self.clients,
            refresh: self.store.as_ref(),
            log: self.store.as_ref(),
            orgs: self.store.as_ref(),
            audit: self.audit(context),
            ephemeral: self.ephemeral.as_ref(),
            password_tries: limits::Rule {
                name: "password_change",
                limit: self.config.passwords.lockout_threshold,
                window_secs: self.config.passwords.lockout_secs,
            },
        }
    }

    /// The enterprise page's operations for a request from `context`.
    pub fn enterprises<'a>(&'a self, context: &'a RequestContext) -> Enterprises<'a> {
        Enterprises {
            identities: &self.identities,
            register: self.outside.enterprises.as_ref(),
            orgs: self.store.as_ref(),
            withdrawal: Withdrawal {
                orgs: self.store.as_ref(),
                refresh: self.store.as_ref(),
                sessions: self.sessions(),
            },
            log: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            audit: self.audit(context),
            limit: limits::Rule {
                name: "enterprise_account",
                limit: self.config.limits.register_per_ip_per_hour,
                window_secs: 3600,
            },
        }
    }

    /// Changing the mobile number on file, for a request from `context`.
    pub fn phone_change<'a>(&'a self, context: &'a RequestContext) -> PhoneChange<'a> {
        PhoneChange {
            identities: &self.identities,
            codes: self.sms_codes(),
            people: self.outside.people.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            sealer: &self.draft_sealer,
            audit: self.audit(context),
            draft_secs: self.config.registration.draft_secs,
            limit: limits::Rule {
                name: "phone_change",
                limit: self.config.passwords.lockout_threshold,
                window_secs: self.config.passwords.lockout_secs,
            },
        }
    }

    /// Second factors (TOTP, recovery codes), for a request from `context`.
    pub fn second_factors<'a>(&'a self, context: &'a RequestContext) -> SecondFactors<'a> {
        SecondFactors {
            store: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            sealer: &self.factor_sealer,
            recovery_key: &self.recovery_key,
            audit: self.audit(context),
            issuer_name: &self.config.second_factor.issuer_name,
            attempts: limits::Rule {
                name: "second_factor",
                limit: self.config.limits.second_factor_per_account_per_hour,
                window_secs: 3600,
            },
        }
    }

    /// Resetting lost second factors (SMS code plus a fresh real-name check).
    pub fn lost_factor<'a>(&'a self, context: &'a RequestContext) -> LostFactor<'a> {
        LostFactor {
            identities: &self.identities,
            codes: self.sms_codes(),
            people: self.outside.people.as_ref(),
            factors: self.store.as_ref(),
            sessions: self.sessions(),
            refresh: self.store.as_ref(),
            audit: self.audit(context),
        }
    }

    /// Passkeys, for a request from `context`, when they are offered.
    pub fn passkeys<'a>(&'a self, context: &'a RequestContext) -> Option<Passkeys<'a>> {
        Some(Passkeys {
            webauthn: self.webauthn.as_ref()?,
            store: self.store.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            sealer: &self.factor_sealer,
            handle_key: &self.handle_key,
            audit: self.audit(context),
        })
    }

    /// Face verification (proofing to level 3), for a request from `context`.
    pub fn face_proofing<'a>(&'a self, context: &'a RequestContext) -> FaceProofing<'a> {
        FaceProofing {
            identities: &self.identities,
            agreements: self.store.as_ref(),
            faces: self.outside.faces.as_ref(),
            ephemeral: self.ephemeral.as_ref(),
            audit: self.audit(context),
            consent_version: &self.config.verify.face_consent_version,
            limit: limits::Rule {
                name: "face_check",
                limit: self.config.limits.face_checks_per_account_per_day,
                window_secs: 86_400,
            },
        }
    }

    /// The device authorization grant's settings (`tokens.device_*`).
    pub fn device_settings(&self) -> crate::protocol::device::DeviceSettings {
        crate::protocol::device::DeviceSettings {
            expires_secs: self.config.tokens.device_code_secs,
            interval_secs: self.config.tokens.device_poll_secs,
        }
    }

    /// Whether face verification (the step to real-name level 3) is offered.
    pub fn face_enabled(&self) -> bool {
        self.config.verify.face.adapter != crate::config::Adapter::Off
    }

    /// The highest level a session of this deployment can reach (docs/assurance.md): 3 needs a
    /// second factor and a way to proof an account at 3 (face verification); no method reaches 4.
    pub fn highest_level(&self) -> u8 {
        super::highest_level(&self.config, self.webauthn.is_some())
    }

    /// Whether registration is offered: SMS codes and the population register are both available.
    pub fn registration_enabled(&self) -> bool {
        self.sms_enabled() && self.config.verify.person.adapter != crate::config::Adapter::Off
    }

    /// Whether registering an enterprise is offered (the market-regulation register is configured).
    pub fn enterprise_register_enabled(&self) -> bool {
        self.config.verify.enterprise.adapter != crate::config::Adapter::Off
    }

    /// Whether features that need an SMS code are offered.
    pub fn sms_enabled(&self) -> bool {
        self.config.sms.adapter != crate::config::Adapter::Off
    }

    /// The token issuer of this node, over `ring`, auditing with the request's context.
    pub fn token_issuer<'a>(
        &'a self,
        ring: &'a KeyRing,
        context: &'a RequestContext,
    ) -> TokenIssuer<'a> {
        TokenIssuer {
            issuer: &self.config.server.issuer,
            ring,
            subjects: &self.subjects,
            tokens: &self.config.tokens,
            audit: self.audit(context),
        }
    }

    /// The token, introspection and revocation endpoints for one request.
    pub fn token_endpoint<'a>(
        &'a self,
        ring: &'a KeyRing,
        context: &'a RequestContext,
    ) -> TokenEndpoint<'a> {
        TokenEndpoint {
            issuer: self.token_issuer(ring, context),
            clients: &self.clients,
            assertions: AssertionContext {
                keys: &self.client_keys,
                secrets: &self.client_secrets,
                ephemeral: self.ephemeral.as_ref(),
                audiences: &self.assertion_audiences,
            },
            ports: GrantPorts {
                identities: &self.identities,
                ephemeral: self.ephemeral.as_ref(),
                refresh: self.store.as_ref(),
                revocations: self.store.as_ref(),
                device: self.device_settings(),
            },
            limit: limits::Rule {
                name: "token_client",
                limit: self.config.limits.token_per_client_per_sec,
                window_secs: 1,
            },
            failure_limit: limits::Rule {
                name: "client_auth_ip",
                limit: self.config.limits.client_auth_failures_per_ip_per_min,
                window_secs: 60,
            },
        }
    }

    /// RP-Initiated and Front-Channel Logout over `ring`.
    pub fn logouts<'a>(&'a self, ring: &'a KeyRing) -> Logouts<'a> {
        Logouts {
            issuer: &self.config.server.issuer,
            ring,
            clients: &self.clients,
            ephemeral: self.ephemeral.as_ref(),
            sessions: self.sessions(),
            policy: self.session_policy(),
        }
    }

    /// Validation of bearer access tokens over `ring`.
    pub fn bearer<'a>(&'a self, ring: &'a KeyRing) -> BearerCheck<'a> {
        BearerCheck {
            issuer: &self.config.server.issuer,
            ring,
            revocations: self.store.as_ref(),
            clients: &self.clients,
        }
    }
}
