<?php
// Shared by the pages: configuration and the client. Not run by yihao's CI (see README.md).
// Environment: YIHAO_ISSUER, CLIENT_ID, CLIENT_SECRET, APP_BASE_URL (e.g. https://dept.example.gov.cn).
require __DIR__ . '/vendor/autoload.php';

use Jumbojett\OpenIDConnectClient;

const SESSION_IDLE_SECS = 1800;   // keep local sessions short

function base_url(): string {
    return rtrim(getenv('APP_BASE_URL'), '/');
}

function yihao(): OpenIDConnectClient {
    // The secret comes from `yihao client create`; it stays on the server.
    $oidc = new OpenIDConnectClient(getenv('YIHAO_ISSUER'), getenv('CLIENT_ID'), getenv('CLIENT_SECRET'));
    $oidc->setRedirectURL(base_url() . '/login.php');   // registered exactly, as --redirect-uri
    $oidc->addScope(['openid', 'profile']);
    $oidc->setCodeChallengeMethod('S256');              // yihao requires PKCE from every client
    $oidc->setTokenEndpointAuthMethodsSupported(['client_secret_basic']);
    return $oidc;
}

function start_session(): void {
    session_set_cookie_params(['httponly' => true, 'secure' => true, 'samesite' => 'Lax']);
    session_start();
    $user = $_SESSION['user'] ?? null;
    if ($user === null) {
        return;
    }
    // Ended by yihao (back-channel logout, see backchannel_logout.php), or idle too long.
    $ended = apcu_exists('yihao-ended-sid:' . $user['sid']);
    if ($ended || time() - ($_SESSION['seen_at'] ?? 0) > SESSION_IDLE_SECS) {
        $_SESSION = [];
        session_regenerate_id(true);
        return;
    }
    $_SESSION['seen_at'] = time();
}

function h($value): string {
    return htmlspecialchars((string) $value, ENT_QUOTES, 'UTF-8');
}
