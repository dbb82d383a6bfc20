<?php
// RP-initiated logout: end the local session, then yihao's with the ID token as hint.
require __DIR__ . '/oidc.php';
start_session();
$idToken = $_SESSION['id_token'] ?? null;
$_SESSION = [];
session_destroy();
if ($idToken === null) {
    header('Location: ' . base_url() . '/');
    exit;
}
// Registered exactly, as --post-logout-redirect-uri
yihao()->signOut($idToken, base_url() . '/');
