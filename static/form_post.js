// OAuth 2.0 Form Post Response Mode: send the response on to the client at once. Without
// JavaScript, the page's button does the same.
document.getElementById("form-post").submit();
