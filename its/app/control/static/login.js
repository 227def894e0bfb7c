// Login form: POST /v1/auth/login as JSON, then go to the control centre.
const form = document.getElementById("login-form");
const error = document.getElementById("login-error");
const button = document.getElementById("login-button");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    error.textContent = "Enter your user name and password.";
    return;
  }
  button.disabled = true;
  try {
    const response = await fetch("/v1/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (response.ok) {
      window.location.assign("/control");
      return;
    }
    const body = await response.json().catch(() => ({}));
    const message = body.error ? body.error.message : `HTTP ${response.status}`;
    error.textContent = response.status === 401 ? "Wrong user name or password." : `Sign-in failed: ${message}`;
  } catch (exc) {
    error.textContent = "The server cannot be reached; try again.";
  } finally {
    button.disabled = false;
  }
});
