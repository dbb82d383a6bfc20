<?php
require __DIR__ . '/oidc.php';
start_session();
$user = $_SESSION['user'] ?? null;
?><!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Department system (PHP)</title></head>
<body>
<h1>Department system (PHP)</h1>
<?php if ($user): ?>
  <table>
  <?php foreach ($user as $name => $value): ?>
    <tr><th><?= h($name) ?></th><td><?= h($value) ?></td></tr>
  <?php endforeach; ?>
  </table>
  <p><a href="logout.php">Sign out</a></p>
<?php else: ?>
  <p><a href="login.php">Sign in with yihao</a></p>
<?php endif; ?>
</body></html>
