//! What an authorization request needs next: a login, a consent, a choice of organisation, or its
//! code. The rules are pure functions of the request, the session and `now` ([`login_needed`],
//! [`consent_needed`], [`organisation_needed`]); [`Interactions`] gathers the facts they need from
//! the stores, one stage at a time, and carries out what they decide (recording consent, issuing the
//! code).
//!
//! OIDC Core §3.1.2.1: "prompt=login: The Authorization Server SHOULD prompt the End-User for
//! reauthentication"; "max_age: ... If the elapsed time is greater than this value, the OP MUST
//! attempt to actively re-authenticate the End-User"; "none: The Authorization Server MUST NOT
//! display any authentication or consent user interface pages. An error is returned if an End-User
//! is not already authenticated or the Client does not have pre-configured consent".

use std::time::Duration;

use serde_json::{Value, json};

use super::accounts::Identities;
use super::assurance::{self, Reach, Requirement, StepUp};
use super::audit::{Audit, AuditEvent, EventType};
use super::authorize::AuthorizeRequest;
use super::claims::org_claim;
use super::limits::{self, Verdict};
use super::session::{self, CodeGrant, Interaction, Session, SessionPolicy};
use super::{ErrorCode, OAuthError};
use crate::crypto::signing::KeyRing;
use crate::crypto::subject::{SubjectCodec, sector_of};
use crate::domain::account::{AccountId, AccountStatus};
use crate::domain::client::Client;
use crate::domain::organisation::{Membership, OrgStatus, Organisation};
use crate::store::{ConsentStore, Ephemeral, FactorStore, OrgStore, SessionStore, StoreError};

/// The outcome of one stage: go on to the next stage, show a page, or answer the client with an
/// error because `prompt=none` forbids the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    Continue,
    Login,
    Consent,
    ChooseOrganisation,
    Refuse {
        code: ErrorCode,
        description: &'static str,
    },
}

impl Stage {
    fn page_or_refuse(
        request: &AuthorizeRequest,
        page: Self,
        code: ErrorCode,
        description: &'static str,
    ) -> Self {
        if request.prompt.none {
            Self::Refuse { code, description }
        } else {
            page
        }
    }
}

/// The session an authorization request arrives with.
#[derive(Debug, Clone, Copy)]
pub enum Current<'a> {
    /// No live session in this browser.
    None,
    /// The browser's session from an earlier login.
    Existing(&'a Session),
    /// The person has just authenticated for this very request.
    JustSignedIn(&'a Session),
}

/// Stage 1: must the person authenticate (again)? `hint_matches` says whether `id_token_hint`, if
/// any, names the session's person.
pub fn login_needed(
    request: &AuthorizeRequest,
    current: Current<'_>,
    hint_matches: bool,
    now: i64,
) -> Stage {
    let needed = match current {
        Current::None => true,
        // Whatever level the login just reached is what this request gets (acr_values are
        // voluntary, OIDC Core §3.1.2.1), and asking again would loop.
        Current::JustSignedIn(_) => false,
        Current::Existing(s) => {
            request.prompt.login
                || request.prompt.select_account
                || request.max_age.is_some_and(|m| now - s.auth_time > m)
                // A higher level is a step-up (`step_up_needed`), never a new login from scratch
                // (docs/assurance.md).
                || !hint_matches
        }
    };
    if !needed {
        return Stage::Continue;
    }
    Stage::page_or_refuse(
        request,
        Stage::Login,
        ErrorCode::LoginRequired,
        "the person must log in",
    )
}

/// Stage 2: must the person consent? A first-party client needs no consent unless `prompt=consent`
/// asks for it; a third-party client needs every requested scope agreed to before.
pub fn consent_needed(
    request: &AuthorizeRequest,
    consented: &[String],
    first_party: bool,
) -> Stage {
    let covered = request.scopes.iter().all(|s| consented.contains(s));
    if !request.prompt.consent && (first_party || covered) {
        return Stage::Continue;
    }
    Stage::page_or_refuse(
        request,
        Stage::Consent,
        ErrorCode::ConsentRequired,
        "the person must consent",
    )
}

/// Stage 3: for `org` requests from a person who holds roles, whom do they act for
/// (docs/organisations.md)?
pub fn organisation_needed(request: &AuthorizeRequest, choices: usize) -> Stage {
    if choices == 0 || !request.scopes.iter().any(|x| x == "org") {
        return Stage::Continue;
    }
    Stage::page_or_refuse(
        request,
        Stage::ChooseOrganisation,
        ErrorCode::InteractionRequired,
        "the person must choose whom to act for",
    )
}

/// Stage 1b: does the session reach the level the request needs (docs/assurance.md)? Asks only
/// for what is missing; with `prompt=none` a missing essential level is `interaction_required`
/// (the person could reach it on a page) and a missing voluntary one is let go. `None`: nothing is
/// missing.
pub fn step_up_needed(
    request: &AuthorizeRequest,
    requirement: Requirement,
    session: &Session,
    reach: &Reach,
) -> Option<Next> {
    let decided = assurance::step_up(requirement, session.level, &session.amr, reach);
    let account_id = session.account_id.clone();
    Some(match decided {
        StepUp::Enough => return None,
        StepUp::Unmet => Next::Refuse(OAuthError::new(
            ErrorCode::UnmetAuthenticationRequirements,
            "the level of assurance the request needs cannot be reached",
        )),
        _ if request.prompt.none => {
            if session.level >= requirement.must && !requirement.two_factors {
                return None;
            } else {
                Next::Refuse(OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "the person must complete a step-up",
                ))
            }
        }
        StepUp::SecondFactor => Next::SecondFactor {
            account_id,
            enrol: false,
        },
        StepUp::Enrol => Next::SecondFactor {
            account_id,
            enrol: true,
        },
        StepUp::Proofing => Next::Proofing { account_id },
    })
}

/// What the request needs next, with what the page or the code needs.
#[derive(Debug)]
pub enum Next {
    Login,
    /// A second factor; `enrol`: the account has none yet and must enrol one.
    SecondFactor {
        account_id: String,
        enrol: bool,
    },
    /// A face check in the app or at a kiosk, then "continue".
    Proofing {
        account_id: String,
    },
    Consent {
        account_id: String,
    },
    ChooseOrganisation {
        account_id: String,
        choices: Vec<(Organisation, Membership)>,
    },
    /// Issue the code in this session.
    Code {
        sid: String,
        session: Session,
    },
    Refuse(OAuthError),
}

/// The ports and settings of the interaction.
pub struct Interactions<'a> {
    pub issuer: &'a str,
    pub ring: &'a KeyRing,
    pub subjects: &'a SubjectCodec,
    pub ephemeral: &'a dyn Ephemeral,
    pub consents: &'a dyn ConsentStore,
    pub orgs: &'a dyn OrgStore,
    pub sessions: &'a dyn SessionStore,
    /// Accounts (their proofing level now), for step-up.
    pub identities: &'a Identities,
    pub factors: &'a dyn FactorStore,
    /// Face verification is configured (a proofing step to level 3 exists).
    pub face: bool,
    /// `second_factor.required_for_all`.
    pub two_factors_for_all: bool,
    pub policy: SessionPolicy,
    /// How long a code lives.
    pub code_ttl: Duration,
    /// Pending requests an address may open (`limits.interactions_per_ip_per_min`).
    pub open_limit: limits::Rule,
}

impl Interactions<'_> {
    /// Saves a pending request under `id`, unless its source address opened too many this window
    /// (security review 5); the first refusal of a window is audited.
    pub async fn open(
        &self,
        id: &str,
        interaction: &Interaction,
        audit: &Audit<'_>,
        now: i64,
    ) -> Result<Verdict, OAuthError> {
        if let Some(source) = audit.context.ip.as_deref() {
            let subject = limits::address_subject(source);
            let verdict = limits::hit(self.ephemeral, self.open_limit, &subject, now)
                .await
                .map_err(OAuthError::server)?;
            if let Verdict::Limited(limited) = verdict {
                if limited.first {
                    audit
                        .record(
                            AuditEvent::failure(EventType::RateLimited, limited.rule)
                                .details(json!({ "retry_after": limited.retry_after })),
                        )
                        .await?;
                }
                return Ok(verdict);
            }
        }
        session::save_interaction(self.ephemeral, id, interaction)
            .await
            .map_err(OAuthError::server)?;
        Ok(Verdict::Allowed)
    }

    /// The live session of a browser's cookie secret, renewed for another idle period.
    pub async fn session(
        &self,
        secret: Option<&str>,
        now: i64,
    ) -> Result<Option<(String, Session)>, StoreError> {
        match secret {
            Some(secret) => session::load(self.ephemeral, secret, self.policy, now).await,
            None => Ok(None),
        }
    }

    /// Runs the stages for `request` at `client` with the browser's session (`fresh` when a login
    /// for this request has just created it) and says what comes next.
    pub async fn next(
        &self,
        client: &Client,
        request: &AuthorizeRequest,
        current: Option<(String, Session)>,
        fresh: bool,
        now: i64,
    ) -> Result<Next, StoreError> {
        let hint_matches = match &current {
            Some((_, s)) if !fresh => self.hint_names(client, request, &s.account_id, now),
            _ => true,
        };
        let stage = match &current {
            None => login_needed(request, Current::None, hint_matches, now),
            Some((_, s)) if fresh => {
                login_needed(request, Current::JustSignedIn(s), hint_matches, now)
            }
            Some((_, s)) => login_needed(request, Current::Existing(s), hint_matches, now),
        };
        let (sid, mut session) = match (stage, current) {
            (Stage::Refuse { code, description }, _) => {
                return Ok(Next::Refuse(OAuthError::new(code, description)));
            }
            (Stage::Continue, Some(current)) => current,
            // Stage 1 continues only with a session; anything else is a login.
            _ => return Ok(Next::Login),
        };
        let Some(mut reach) = self.reach(&sid, &mut session).await? else {
            // The account is gone or cannot sign in: sign in again.
            return Ok(Next::Login);
        };
        // "Not now" at the proofing page: what is left is the level reached (or, when it was
        // essential, `unmet_authentication_requirements`).
        reach.face &= !request.step_up_declined;
        let two_factors = self.two_factors_for_all
            || self
                .factors
                .second_factor_required(&session.account_id)
                .await?;
        let requirement = Requirement::of(request, client, two_factors);
        // The factors are read only when the session may fall short (most requests do not).
        if assurance::may_fall_short(requirement, session.level, &session.amr) {
            reach.has_factor = self.has_factor(&session.account_id).await?;
        }
        if let Some(next) = step_up_needed(request, requirement, &session, &reach) {
            return Ok(next);
        }
        let consented = self
            .consents
            .consented_scopes(&session.account_id, client.id().as_str())
            .await?;
        match consent_needed(request, &consented, client.first_party()) {
            Stage::Continue => {}
            Stage::Refuse { code, description } => {
                return Ok(Next::Refuse(OAuthError::new(code, description)));
            }
            _ => {
                return Ok(Next::Consent {
                    account_id: session.account_id,
                });
            }
        }
        self.after_consent(request, sid, session, now).await
    }

    /// What the session's person can still do ([`Reach`]), with the session's level brought up to
    /// date with the account's proofing level now (a face check in the app raises it; an
    /// administrator may lower it). `None` when the account is gone or no longer active.
    /// `has_factor` is left false: the factors are read only when a step-up may need them.
    pub async fn reach(
        &self,
        sid: &str,
        session: &mut Session,
    ) -> Result<Option<Reach>, StoreError> {
        let Ok(id) = AccountId::parse(&session.account_id) else {
            return Ok(None);
        };
        let account = match self.identities.account(&id).await {
            Ok(Some(a)) if a.status == AccountStatus::Active => a,
            Ok(_) => return Ok(None),
            Err(e) => return Err(StoreError::backend("account", e)),
        };
        let proofed = account.evidence.level().get();
        let level = assurance::session_level_with(proofed, &session.amr, session.ceiling);
        if level != session.level {
            session.level = level;
            session::save(self.ephemeral, sid, session, self.policy).await?;
        }
        Ok(Some(Reach {
            proofed,
            face: self.face
                && proofed == assurance::ONE_FACTOR_CEILING
                && account
                    .documents
                    .iter()
                    .any(|d| d.kind().is_national_number()),
            // Read only when a step-up may need it ([`Interactions::has_factor`]).
            has_factor: false,
        }))
    }

    /// Adds a second factor (`method`, an RFC 8176 amr value) to the session `sid` the person just
    /// presented: the methods gain it and `mfa`, `auth_time` is now (OIDC Core §2: "Time when the
    /// End-User authentication occurred"), and the level follows; live, durable and audited.
    pub async fn raise(
        &self,
        audit: &Audit<'_>,
        sid: &str,
        mut session: Session,
        method: &str,
        now: i64,
    ) -> Result<Session, OAuthError> {
        let before = session.level;
        session.amr = assurance::with_second_factor(&session.amr, method);
        session.auth_time = now;
        if self
            .reach(sid, &mut session)
            .await
            .map_err(OAuthError::server)?
            .is_none()
        {
            return Err(OAuthError::new(
                ErrorCode::LoginRequired,
                "the account can no longer sign in",
            ));
        }
        session::save(self.ephemeral, sid, &session, self.policy)
            .await
            .map_err(OAuthError::server)?;
        self.sessions
            .raise_session(sid, i64::from(session.level), &session.amr.join(" "), now)
            .await
            .map_err(OAuthError::server)?;
        audit
            .record(AuditEvent {
                acr: Some(format!("urn:yihao:loa:{}", session.level)),
                ..AuditEvent::success(EventType::StepUp)
                    .actor(session.account_id.as_str())
                    .target(sid)
                    .details(json!({ "amr": session.amr, "from": before }))
            })
            .await?;
        Ok(session)
    }

    /// Whether the account has a second factor enrolled.
    async fn has_factor(&self, account_id: &str) -> Result<bool, StoreError> {
        Ok(!self.factors.factors_of(account_id).await?.is_empty())
    }

    /// Stage 3 and the code: asks whom the person acts for when that is open, else the code.
    pub async fn after_consent(
        &self,
        request: &AuthorizeRequest,
        sid: String,
        session: Session,
        now: i64,
    ) -> Result<Next, StoreError> {
        let choices = if request.scopes.iter().any(|x| x == "org") {
            self.org_choices(&session.account_id, now).await?
        } else {
            Vec::new()
        };
        Ok(match organisation_needed(request, choices.len()) {
            Stage::Continue => Next::Code { sid, session },
            Stage::Refuse { code, description } => Next::Refuse(OAuthError::new(code, description)),
            _ => Next::ChooseOrganisation {
                account_id: session.account_id,
                choices,
            },
        })
    }

    /// True unless `id_token_hint` is given and does not name the session's person (or is not
    /// ours). OIDC Core §3.1.2.1: an expired ID token is still a valid hint.
    fn hint_names(
        &self,
        client: &Client,
        request: &AuthorizeRequest,
        account_id: &str,
        now: i64,
    ) -> bool {
        let Some(hint) = &request.id_token_hint else {
            return true;
        };
        let mut validation = jsonwebtoken::Validation {
            validate_exp: false,
            validate_aud: false,
            ..Default::default()
        };
        validation.set_issuer(&[self.issuer]);
        match self.ring.verify_token::<Value>(hint, validation, now) {
            Ok((_, claims)) => {
                claims["sub"].as_str()
                    == Some(
                        self.subjects
                            .encode(&sector_of(client), account_id)
                            .as_str(),
                    )
            }
            Err(_) => false,
        }
    }

    /// The person's answer on the consent page, audited either way: a refusal is `access_denied`
    /// for the client (RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the
    /// request."); an agreement is recorded and the request goes on to stage 3.
    #[allow(clippy::too_many_arguments)]
    pub async fn consent(
        &self,
        audit: &Audit<'_>,
        client: &Client,
        request: &AuthorizeRequest,
        sid: String,
        session: Session,
        allowed: bool,
        now: i64,
    ) -> Result<Next, OAuthError> {
        let event = if allowed {
            AuditEvent::success(EventType::ConsentGiven)
        } else {
            AuditEvent::failure(EventType::ConsentRefused, "declined")
        }
        .actor(session.account_id.as_str())
        .client(client.id().as_str())
        .details(json!({ "scopes": request.scopes }));
        audit.record(event).await?;
        if !allowed {
            return Ok(Next::Refuse(OAuthError::new(
                ErrorCode::AccessDenied,
                "the person declined",
            )));
        }
        self.record_consent(&session.account_id, client, request, now)
            .await?;
        Ok(self.after_consent(request, sid, session, now).await?)
    }

    /// Adds the request's scopes to what the person agreed to release to the client.
    pub async fn record_consent(
        &self,
        account_id: &str,
        client: &Client,
        request: &AuthorizeRequest,
        now: i64,
    ) -> Result<(), StoreError> {
        let client_id = client.id().as_str();
        let mut scopes = self
            .consents
            .consented_scopes(account_id, client_id)
            .await?;
        for scope in &request.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes.sort();
        self.consents
            .save_consent(account_id, client_id, &scopes, now)
            .await
    }

    /// The organisation roles an account holds now, in active organisations.
    pub async fn org_choices(
        &self,
        account_id: &str,
        now: i64,
    ) -> Result<Vec<(Organisation, Membership)>, StoreError> {
        let Ok(account) = AccountId::parse(account_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for m in self.orgs.memberships_of(&account).await? {
            if !m.is_active(now) {
                continue;
            }
            if let Some(org) = self.orgs.org(&m.org_id).await?
                && org.status == OrgStatus::Active
            {
                out.push((org, m));
            }
        }
        Ok(out)
    }

    /// What the form value `chosen` ([`choice_value`], or `none`) stands for.
    pub async fn choose_org(
        &self,
        client: &Client,
        account_id: &str,
        chosen: &str,
        now: i64,
    ) -> Result<Choice, StoreError> {
        if chosen == "none" {
            return Ok(Choice::Nobody);
        }
        let found = self
            .org_choices(account_id, now)
            .await?
            .into_iter()
            .find(|(o, m)| choice_value(o, m) == chosen);
        let Some((org, m)) = found else {
            return Ok(Choice::NotOffered);
        };
        let sector = sector_of(client);
        let granted_by = m
            .granted_by
            .as_ref()
            .map(|g| self.subjects.encode(&sector, g.as_str()));
        Ok(Choice::Organisation(org_claim(&org, &m, granted_by)))
    }

    /// Issues the code for `request` in session `sid` (with the chosen `org` claim), and records
    /// the client in the session so that logout reaches it, whichever node ends the session.
    #[allow(clippy::too_many_arguments)]
    pub async fn issue_code(
        &self,
        client: &Client,
        request: &AuthorizeRequest,
        sid: &str,
        session: Session,
        org: Option<Value>,
        now: i64,
    ) -> Result<String, StoreError> {
        let grant = self
            .grant_for(client, request, sid, session, org, now)
            .await?;
        session::issue_code(self.ephemeral, &grant, self.code_ttl).await
    }

    /// What a code (or an approved device grant) stands for, from the request and the session; the
    /// client is recorded in the session so that logout reaches it, whichever node ends it.
    pub async fn grant_for(
        &self,
        client: &Client,
        request: &AuthorizeRequest,
        sid: &str,
        mut session: Session,
        org: Option<Value>,
        now: i64,
    ) -> Result<CodeGrant, StoreError> {
        let grant = CodeGrant {
            client_id: client.id().as_str().to_owned(),
            redirect_uri: request.redirect_uri.clone(),
            account_id: session.account_id.clone(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            level: session.level,
            amr: session.amr.clone(),
            sid: sid.to_owned(),
            claims_userinfo: request.claims_userinfo.clone(),
            claims_id_token: request.claims_id_token.clone(),
            org,
        };
        if !session.clients.iter().any(|c| c == client.id().as_str()) {
            session.clients.push(client.id().as_str().to_owned());
            session::save(self.ephemeral, sid, &session, self.policy).await?;
            self.sessions
                .touch_session(sid, &session.clients, now)
                .await?;
        }
        Ok(grant)
    }
}

/// The form value naming one organisation role.
pub fn choice_value(org: &Organisation, m: &Membership) -> String {
    format!("{}|{}", org.id, m.role.as_str())
}

/// Whom the person chose to act for.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// Themselves.
    Nobody,
    /// The `org` claim of the role chosen.
    Organisation(Value),
    /// A value the page did not offer (or a role that ended meanwhile).
    NotOffered,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::Prompt;

    fn request(scopes: &[&str]) -> AuthorizeRequest {
        AuthorizeRequest::internal(
            "tax",
            "https://tax.example/cb".into(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
            Prompt::default(),
        )
    }

    fn session(auth_time: i64, level: u8) -> Session {
        Session {
            account_id: "a".into(),
            auth_time,
            level,
            amr: vec!["pwd".into()],
            created_at: auth_time,
            clients: Vec::new(),
            idle_secs: 0,
            absolute_secs: 0,
            ceiling: 0,
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn no_session_asks_for_a_login_or_refuses_with_prompt_none() {
        let mut r = request(&["openid"]);
        assert_eq!(login_needed(&r, Current::None, true, NOW), Stage::Login);
        r.prompt.none = true;
        assert_eq!(
            login_needed(&r, Current::None, true, NOW),
            Stage::Refuse {
                code: ErrorCode::LoginRequired,
                description: "the person must log in"
            }
        );
    }

    #[test]
    fn a_session_is_reused_unless_the_request_asks_for_a_fresh_login() {
        let s = session(NOW - 100, 2);
        let r = request(&["openid"]);
        assert_eq!(
            login_needed(&r, Current::Existing(&s), true, NOW),
            Stage::Continue
        );
        let mut login = request(&["openid"]);
        login.prompt.login = true;
        assert_eq!(
            login_needed(&login, Current::Existing(&s), true, NOW),
            Stage::Login
        );
        let mut select = request(&["openid"]);
        select.prompt.select_account = true;
        assert_eq!(
            login_needed(&select, Current::Existing(&s), true, NOW),
            Stage::Login
        );
        // max_age bounds the age of the last authentication: 100 s old.
        let mut aged = request(&["openid"]);
        aged.max_age = Some(100);
        assert_eq!(
            login_needed(&aged, Current::Existing(&s), true, NOW),
            Stage::Continue
        );
        aged.max_age = Some(99);
        assert_eq!(
            login_needed(&aged, Current::Existing(&s), true, NOW),
            Stage::Login
        );
        // An id_token_hint for someone else.
        assert_eq!(
            login_needed(&r, Current::Existing(&s), false, NOW),
            Stage::Login
        );
        // Having just signed in for this request, nothing asks again (no loop).
        assert_eq!(
            login_needed(&login, Current::JustSignedIn(&s), true, NOW),
            Stage::Continue
        );
    }

    #[test]
    fn a_higher_level_is_a_step_up_not_a_new_login() {
        let mut r = request(&["openid"]);
        r.acr_values = vec!["urn:yihao:loa:3".into()];
        let s = session(NOW, 2);
        assert_eq!(
            login_needed(&r, Current::Existing(&s), true, NOW),
            Stage::Continue
        );
        let reach = Reach {
            proofed: 3,
            face: false,
            has_factor: true,
        };
        let wish = Requirement {
            must: 0,
            wish: 3,
            two_factors: false,
        };
        assert!(matches!(
            step_up_needed(&r, wish, &s, &reach),
            Some(Next::SecondFactor { enrol: false, .. })
        ));
        r.prompt.none = true;
        assert!(
            step_up_needed(&r, wish, &s, &reach).is_none(),
            "prompt=none and a voluntary level: the level reached"
        );
        let must = Requirement { must: 3, ..wish };
        assert!(matches!(
            step_up_needed(&r, must, &s, &reach),
            Some(Next::Refuse(e)) if e.code == ErrorCode::InteractionRequired
        ));
        r.prompt.none = false;
        let unreachable = Reach {
            has_factor: false,
            ..reach
        };
        assert!(matches!(
            step_up_needed(&r, must, &s, &unreachable),
            Some(Next::Refuse(e)) if e.code == ErrorCode::UnmetAuthenticationRequirements
        ));
    }

    #[test]
    fn consent_is_asked_for_what_was_not_agreed_to() {
        let r = request(&["openid", "profile"]);
        let agreed = ["openid".to_owned(), "profile".to_owned()];
        assert_eq!(consent_needed(&r, &agreed, false), Stage::Continue);
        assert_eq!(consent_needed(&r, &agreed[..1], false), Stage::Consent);
        assert_eq!(
            consent_needed(&r, &[], true),
            Stage::Continue,
            "first party"
        );
        let mut asked = request(&["openid"]);
        asked.prompt.consent = true;
        assert_eq!(consent_needed(&asked, &agreed, true), Stage::Consent);
        let mut silent = request(&["openid", "phone"]);
        silent.prompt.none = true;
        assert_eq!(
            consent_needed(&silent, &agreed, false),
            Stage::Refuse {
                code: ErrorCode::ConsentRequired,
                description: "the person must consent"
            }
        );
    }

    #[test]
    fn the_organisation_is_chosen_only_for_org_requests_with_roles() {
        assert_eq!(
            organisation_needed(&request(&["openid", "org"]), 0),
            Stage::Continue
        );
        assert_eq!(
            organisation_needed(&request(&["openid"]), 2),
            Stage::Continue
        );
        let mut r = request(&["openid", "org"]);
        assert_eq!(organisation_needed(&r, 1), Stage::ChooseOrganisation);
        r.prompt.none = true;
        assert!(matches!(
            organisation_needed(&r, 1),
            Stage::Refuse {
                code: ErrorCode::InteractionRequired,
                ..
            }
        ));
    }
}
