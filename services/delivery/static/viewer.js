// vaxcred SMART Health Link viewer (served by vaxcred, no third-party code but the vendored QR
// encoder). Reads the shlink:/ payload from the URL fragment, asks for the passcode when the
// link has flag P, fetches the manifest and file, decrypts the JWE with WebCrypto (dir +
// A256GCM, optional zip DEF via DecompressionStream('deflate-raw')), then shows the patient's
// name, the doses, the card's QR code and a .smart-health-card download. Data from the card is
// only ever put on the page as text (textContent), never as HTML.
'use strict';
(function () {
  var RECIPIENT = 'vaxcred viewer';
  var CVX = {
    '207': 'COVID-19, mRNA (Moderna)', '208': 'COVID-19, mRNA (Pfizer-BioNTech)',
    '210': 'COVID-19, vector (AstraZeneca)', '211': 'COVID-19, protein subunit (Novavax)',
    '212': 'COVID-19, vector (Janssen)', '213': 'COVID-19, unspecified',
    '217': 'COVID-19, mRNA (Pfizer-BioNTech)', '218': 'COVID-19, mRNA (Pfizer-BioNTech, pediatric)',
    '219': 'COVID-19, mRNA (Pfizer-BioNTech, pediatric)', '221': 'COVID-19, mRNA (Moderna)',
    '228': 'COVID-19, mRNA (Moderna, pediatric)', '229': 'COVID-19, mRNA bivalent (Moderna)',
    '230': 'COVID-19, mRNA bivalent (Moderna)', '300': 'COVID-19, mRNA bivalent (Pfizer-BioNTech)',
    '301': 'COVID-19, mRNA bivalent (Pfizer-BioNTech)', '302': 'COVID-19, mRNA bivalent (Pfizer-BioNTech)',
    '309': 'COVID-19, mRNA (Pfizer-BioNTech)', '310': 'COVID-19, mRNA (Pfizer-BioNTech)',
    '311': 'COVID-19, mRNA (Moderna)', '312': 'COVID-19, mRNA (Moderna)', '313': 'COVID-19, protein subunit (Novavax)'
  };

  function $(id) { return document.getElementById(id); }
  function setStatus(text) { $('status').textContent = text; }

  function b64urlToBytes(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  var utf8 = new TextDecoder();

  async function inflateRaw(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function parsePayload() {
    var hash = window.location.hash.slice(1);
    var at = hash.indexOf('shlink:/');
    if (at < 0) { throw new Error('This page opens SMART Health Links; the link is missing or incomplete.'); }
    var payload = JSON.parse(utf8.decode(b64urlToBytes(hash.slice(at + 'shlink:/'.length))));
    if (typeof payload.url !== 'string' || typeof payload.key !== 'string') {
      throw new Error('This SMART Health Link is damaged.');
    }
    if (payload.v && payload.v > 1) { throw new Error('This link needs a newer viewer.'); }
    return payload;
  }

  async function decryptJwe(jwe, keyBytes) {
    var parts = jwe.trim().split('.');
    if (parts.length !== 5) { throw new Error('The record file is damaged.'); }
    var header = JSON.parse(utf8.decode(b64urlToBytes(parts[0])));
    if (header.alg !== 'dir' || header.enc !== 'A256GCM') { throw new Error('The record file uses an unsupported encryption.'); }
    var key = await crypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['decrypt']);
    var ct = b64urlToBytes(parts[3]);
    var tag = b64urlToBytes(parts[4]);
    var data = new Uint8Array(ct.length + tag.length);
    data.set(ct); data.set(tag, ct.length);
    var plain = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: b64urlToBytes(parts[2]), additionalData: new TextEncoder().encode(parts[0]), tagLength: 128 },
      key, data));
    if (header.zip === 'DEF') { plain = await inflateRaw(plain); }
    return plain;
  }

  function WrongPasscode(remaining) { this.remaining = remaining; }

  async function fetchFiles(payload, passcode) {
    var flags = payload.flag || '';
    if (flags.indexOf('U') >= 0) {
      var sep = payload.url.indexOf('?') >= 0 ? '&' : '?';
      var direct = await fetch(payload.url + sep + 'recipient=' + encodeURIComponent(RECIPIENT));
      if (!direct.ok) { throw new Error(direct.status === 404 ? 'This link is no longer active.' : 'The record could not be fetched.'); }
      return [await direct.text()];
    }
    var body = { recipient: RECIPIENT };
    if (passcode !== undefined) { body.passcode = passcode; }
    var r = await fetch(payload.url, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
    });
    if (r.status === 401) { throw new WrongPasscode((await r.json()).remainingAttempts); }
    if (r.status === 404) { throw new Error('This link is no longer active. Ask for a new one.'); }
    if (!r.ok) { throw new Error('The server could not open this link (HTTP ' + r.status + ').'); }
    var manifest = await r.json();
    var out = [];
    for (var i = 0; i < (manifest.files || []).length; i++) {
      var f = manifest.files[i];
      if (f.contentType !== 'application/smart-health-card') { continue; }
      if (f.embedded) { out.push(f.embedded); continue; }
      if (f.location) {
        var fr = await fetch(f.location);
        if (!fr.ok) { throw new Error('The record file could not be fetched.'); }
        out.push(await fr.text());
      }
    }
    if (!out.length) { throw new Error('This link holds no health card.'); }
    return out;
  }

  async function jwsPayload(jws) {
    var parts = jws.split('.');
    var header = JSON.parse(utf8.decode(b64urlToBytes(parts[0])));
    var bytes = b64urlToBytes(parts[1]);
    if (header.zip === 'DEF') { bytes = await inflateRaw(bytes); }
    return JSON.parse(utf8.decode(bytes));
  }

  function shcNumeric(jws) {
    var s = '';
    for (var i = 0; i < jws.length; i++) {
      var n = jws.charCodeAt(i) - 45;
      s += (n < 10 ? '0' : '') + n;
    }
    return s;
  }

  function renderQr(jws) {
    // Two segments, as the SHC spec requires: "shc:/" in byte mode, the digits in numeric mode.
    var qr = qrcode(0, 'L');
    qr.addData('shc:/', 'Byte');
    qr.addData(shcNumeric(jws), 'Numeric');
    qr.make();
    $('qr').innerHTML = qr.createSvgTag({ cellSize: 4, margin: 16, scalable: true });
  }

  function patientName(p) {
    var n = (p.name || [])[0] || {};
    if (n.text) { return n.text; }
    return ((n.given || []).join(' ') + ' ' + (n.family || '')).trim() || 'Unnamed patient';
  }

  function vaccineName(imm) {
    var codings = (imm.vaccineCode && imm.vaccineCode.coding) || [];
    for (var i = 0; i < codings.length; i++) {
      var c = codings[i];
      if (c.system === 'http://hl7.org/fhir/sid/cvx' && CVX[c.code]) { return CVX[c.code]; }
    }
    return codings.length ? (codings[0].display || ('Code ' + codings[0].code)) : 'Vaccine';
  }

  function cell(row, text) {
    var td = document.createElement('td');
    td.textContent = text || '';
    row.appendChild(td);
  }

  async function showCard(fileText) {
    var file = JSON.parse(fileText);
    var jws = (file.verifiableCredential || [])[0];
    if (typeof jws !== 'string') { throw new Error('The record file holds no card.'); }
    var payload = await jwsPayload(jws);
    var entries = (((payload.vc || {}).credentialSubject || {}).fhirBundle || {}).entry || [];
    var patient = null;
    var doses = [];
    entries.forEach(function (e) {
      var r = e.resource || {};
      if (r.resourceType === 'Patient' && !patient) { patient = r; }
      if (r.resourceType === 'Immunization') { doses.push(r); }
    });
    if (!patient) { throw new Error('The card has no patient.'); }
    $('patient-name').textContent = patientName(patient);
    $('birth-date').textContent = patient.birthDate || 'unknown';
    var tbody = $('doses').querySelector('tbody');
    tbody.textContent = '';
    doses.sort(function (a, b) { return String(a.occurrenceDateTime).localeCompare(String(b.occurrenceDateTime)); });
    doses.forEach(function (d) {
      var row = document.createElement('tr');
      cell(row, d.occurrenceDateTime);
      cell(row, vaccineName(d));
      cell(row, d.lotNumber);
      cell(row, ((d.performer || [])[0] || {}).actor ? d.performer[0].actor.display : '');
      tbody.appendChild(row);
    });
    renderQr(jws);
    var blob = new Blob([fileText], { type: 'application/smart-health-card' });
    $('download').href = URL.createObjectURL(blob);
    $('passcode-form').hidden = true;
    $('card').hidden = false;
    setStatus('Record opened.');
    $('patient-name').setAttribute('tabindex', '-1');
    $('patient-name').focus();
  }

  async function open(payload, passcode) {
    setStatus('Opening the record…');
    try {
      var files = await fetchFiles(payload, passcode);
      var key = b64urlToBytes(payload.key);
      var plain = await decryptJwe(files[0], key);
      await showCard(utf8.decode(plain));
    } catch (e) {
      if (e instanceof WrongPasscode) {
        $('passcode-error').textContent = 'Wrong passcode. ' + e.remaining + (e.remaining === 1 ? ' attempt' : ' attempts') + ' left.';
        setStatus('The passcode was not accepted.');
        $('passcode').value = '';
        $('passcode').focus();
        return;
      }
      $('passcode-form').hidden = true;
      setStatus(e && e.message ? e.message : 'The record could not be opened.');
    }
  }

  function start() {
    var payload;
    try { payload = parsePayload(); } catch (e) { setStatus(e.message); return; }
    if (payload.label) { $('label').textContent = payload.label; $('label').hidden = false; }
    if (payload.exp && payload.exp < Date.now() / 1000) { setStatus('This link has expired. Ask for a new one.'); return; }
    if ((payload.flag || '').indexOf('P') >= 0) {
      setStatus('This record is protected by a passcode.');
      $('passcode-form').hidden = false;
      $('passcode').focus();
      $('passcode-form').addEventListener('submit', function (ev) {
        ev.preventDefault();
        var value = $('passcode').value;
        if (!value) { $('passcode-error').textContent = 'Please enter the passcode.'; return; }
        $('passcode-error').textContent = '';
        open(payload, value);
      });
    } else {
      open(payload);
    }
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
