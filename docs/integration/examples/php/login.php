<?php
// The redirect URI: the first visit goes to yihao, the second comes back with the code.
require __DIR__ . '/oidc.php';
start_session();
$oidc = yihao();
// RFC 9207: yihao names itself in every authorization response; refuse another issuer (mix-up).
if (isset($_GET['iss']) && $_GET['iss'] !== getenv('YIHAO_ISSUER')) {
    http_response_code(400);
    exit('the authorization response does not come from the expected issuer');
}
try {
    // Sends state, nonce and the PKCE challenge; back here, checks state, the ID token's signature
    // (JWKS), iss, aud, exp and nonce. An error response (access_denied,
    // unmet_authentication_requirements, ...) is thrown.
    $oidc->authenticate();
} catch (Exception $e) {
    http_response_code(400);
    exit('Sign-in failed: ' . h($e->getMessage()));
}
$claims = $oidc->getVerifiedClaims();
session_regenerate_id(true);   // no session fixation
$_SESSION['user'] = [
    'sub' => $claims->sub,       // pairwise: use it as the key of the person in this system
    'acr' => $claims->acr,       // urn:yihao:loa:N, the level reached
    'amr' => implode(' ', $claims->amr ?? []),
    'auth_time' => $claims->auth_time,
    'sid' => $claims->sid,
    'name' => $oidc->requestUserInfo('name'),   // the person's data comes from userinfo
];
$_SESSION['id_token'] = $oidc->getIdToken();   // for the logout's id_token_hint only
$_SESSION['seen_at'] = time();
apcu_store('yihao-sid:' . $claims->sid, session_id(), 12 * 3600);
header('Location: ' . base_url() . '/');
