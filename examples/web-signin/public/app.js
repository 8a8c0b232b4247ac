const { startRegistration, startAuthentication } = SimpleWebAuthnBrowser;
let accessToken = '';
let mfaToken = '';
const $ = (id) => document.getElementById(id);
const say = (text) => ($('status').textContent = text);
async function api(path, body = {}) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}) },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  if (!res.ok) throw new Error(answer.error);
  return answer;
}
async function show() {
  $('signed-out').hidden = !!accessToken;
  $('signed-in').hidden = !accessToken;
  if (accessToken) $('who').textContent = (await api('/api/me')).username;
}
function started(answer) {
  accessToken = answer.accessToken;
  return show();
}
$('login').onclick = async () => {
  try {
    const answer = await api('/api/session/login', { username: $('username').value, password: $('password').value });
    if (answer.mfaRequired) {
      mfaToken = answer.mfaToken;
      $('totp-step').hidden = false;
      return say('Enter the code from your app');
    }
    await started(answer);
    say('Signed in with a password');
  } catch (err) { say(`Sign-in failed: ${err.message}`); }
};
$('totp-submit').onclick = async () => {
  try {
    await started(await api('/api/session/totp', { mfaToken, code: $('totp').value }));
    $('totp-step').hidden = true;
    say('Signed in with a password and a code');
  } catch (err) { say(`Code refused: ${err.message}`); }
};
$('passkey-login').onclick = async () => {
  try {
    const { ceremonyId, optionsJson } = await api('/api/session/passkey/start');
    const response = await startAuthentication({ optionsJSON: JSON.parse(optionsJson) });
    await started(await api('/api/session/passkey/finish', { ceremonyId, responseJson: JSON.stringify(response) }));
    say('Signed in with a passkey');
  } catch (err) { say(`Passkey sign-in failed: ${err.message}`); }
};
$('register-passkey').onclick = async () => {
  try {
    const { ceremonyId, optionsJson } = await api('/api/passkeys/start');
    const response = await startRegistration({ optionsJSON: JSON.parse(optionsJson) });
    const { name } = await api('/api/passkeys/finish', { ceremonyId, responseJson: JSON.stringify(response), name: 'This browser' });
    say(`Passkey added: ${name}`);
  } catch (err) { say(`Passkey not added: ${err.message}`); }
};
$('transfer').onclick = async () => {
  try {
    await api('/api/transfer');
    say('Transfer done');
  } catch (err) { say(`Transfer refused: ${err.message}`); }
};
$('logout').onclick = async () => {
  await api('/api/session/logout');
  accessToken = '';
  await show();
  say('Signed out');
};
// A reload keeps the session: the cookie (which this script cannot read) gets a new access token.
api('/api/session/refresh').then(started, () => show());
