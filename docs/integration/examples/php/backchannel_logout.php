<?php
// OpenID Connect Back-Channel Logout 1.0: registered as
// --backchannel-logout-uri https://dept.example.gov.cn/backchannel_logout.php
require __DIR__ . '/oidc.php';
header('Cache-Control: no-store');
$oidc = yihao();
try {
    // Checks the signature (JWKS), iss, aud, iat, the event, sid or sub, and that there is no nonce.
    $ok = $oidc->verifyLogoutToken();
} catch (Exception $e) {
    $ok = false;
}
$claims = $ok ? $oidc->getVerifiedClaims() : null;
// The library leaves these to the application: the token's expiry, and each jti accepted once.
if (!$ok || !isset($claims->exp, $claims->jti) || $claims->exp < time()
    || !apcu_add('yihao-logout-jti:' . $claims->jti, 1, 600)) {
    http_response_code(400);
    header('Content-Type: application/json');
    exit('{"error":"invalid_request"}');
}
$sid = $oidc->getSidFromBackChannel();
// Every request of that session is refused from now (oidc.php's start_session), and the session
// itself is removed when it can be found.
apcu_store('yihao-ended-sid:' . $sid, 1, 12 * 3600);
$local = apcu_fetch('yihao-sid:' . $sid);
if ($local !== false) {
    session_id($local);
    session_start();
    session_destroy();
}
http_response_code(200);
