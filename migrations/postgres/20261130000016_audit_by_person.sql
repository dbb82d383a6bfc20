-- A person's own page lists what the audit log says about them (sign-in history, the disclosure
-- ledger of attribute releases): records by actor and by target, newest first.
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_target ON audit_log (target, seq);
