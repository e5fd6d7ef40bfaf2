"""A stand-in for the SMS/MMS provider (Skycore Messaging API v1, docs/provider-protocol.md) on loopback, for
tests, benchmarks and the local stack.

    with ProviderSimulator(api_key="TEST-KEY", postback_url="http://127.0.0.1:3000/postback/x") as sim:
        requests.post(sim.api_url, data=xml, headers={"Content-Type": "text/xml"})
        sim.wait_for_postbacks()
        assert sim.stats()["duplicates"] == 0

The API (`POST <api_url>`, default path `/API/wxml/1.3/`, also `.../index.php`) takes a raw XML body sent as
`text/xml` or the older form body (`xml=`/`XML=`), checks it like the provider (protocol.py) and answers the
§2 shapes with fresh TRACKINGIDs (base64 of `SMS_<n>`/`MMS_<n>`) and numeric MMSIDs. Any other method gets
HTTP 405 with an E100 failure document. Accepted sends and saved templates produce postbacks (postbacks.py),
delivered one at a time with retries (delivery.py). A throughput limit answers E113, a minimum interval
between calls E106, a request quota E120 (throughput.py); provider faults replace answers
(provider_faults.py); everything is in the audit log (audit.py). The HTTP face is handler.py; the control API
below is `ProviderSimulator.control` (server.py).

It is as strict as the protocol, so that a request-builder regression fails a test instead of passing it
(docs/provider-protocol.md §1, §2, §6): a body that is not `text/xml` (charset, if given, UTF-8) nor the form
body, an element name that is not exactly one of the v1 upper-case names the action's table lists (`api-key`,
`to`, `APIKEY`, `FALLBACK-SMS-TEXT` and unknown elements are refused; `PERSONALIZED-IMAGE`/`TEMPLATE-ID` keep
their v1 hyphens; DATA's children are free-form), a CUSTOMTEXT without VALUE or SLIDE or with a SLIDE out of
range, more than one CUSTOMTEXT, and a sendMMS without FALLBACKSMSTEXT are all refused with a code. ACTION
values stay case-insensitive (§1).

Outcomes beyond the happy path: N102/N202 delivery reports with a failure STATUS (`PostbackSettings`
`status_text`, e.g. `Message Sent/Expired`; `/NotSupported` is written `/Not Supported` in the hyphenated
dialect), a proxy's answers without XML (`ProviderFault("http_error", status=429, retry_after_s=7)` with a
`Retry-After` header, `status=408`), and E106/E120 (`min_interval_s`, `request_quota`, or an `answer` fault).

Control API (JSON, under the same base URL):

- `GET /_sim/health`: `{"ok": true, "api_url": ...}`.
- `GET /_sim/log?since=<seq>`: `{"entries": [...], "last_seq": n}`, API calls and postback attempts after
  `seq`. Request fields are recorded with the API key redacted.
- `GET /_sim/stats`: calls by action and answer, accepted sends, E113s, E106s, E120s, quota used, faults,
  duplicates (accepted sends whose (TO, content) was seen before), postback counts.
- `GET|POST|DELETE /_sim/faults`: the provider faults: list / add (one fault object, or `{"faults": [...],
  "clear": true, "seed": 1}`) / clear. Fields as `ProviderFault`, e.g. `{"kind": "http_error", "status": 429,
  "retry_after_s": 7}`. (Failures of AWS calls are injected client-side instead: local/aws_faults.py.)
- `GET|POST /_sim/config`: `postback_url`, `mo_postback_url`, `throughput_per_s`, `min_interval_s`,
  `request_quota` (setting it starts a new quota period), `postbacks` (an object of `PostbackSettings` fields
  to change, e.g. `{"mms_outcome": "N102", "status_text": "Message Sent/Expired"}`).
- `POST /_sim/inbound`: `{"kind": "sms_mo", "from", "to", "text"}`; `mms_mo` with `files`, `keyword`,
  `subject`; `subscribe` / `unsubscribe` with `mobile`, `campaign_id`; `raw` with `body`.
- `POST /_sim/templates`: `{"mms_id": "48213", "ready_in_s": 0, "outcome": "N003", "slides": 3}`, a template
  the account already has (`slides` optional: it bounds CUSTOMTEXT's SLIDE, 1-8 when not given).
- `POST /_sim/reset`: forget calls, stats, faults, throughput window, interval mark, quota use, queued
  postbacks, saved templates.

Decisions where the protocol reference (docs/provider-protocol.md) is silent:

- Checks run in this order: Content-Type and document (E100/E108), key (E102, E104), action (missing E101,
  unknown E107), element names (E100), quota (E120), minimum interval (E106), throughput (E113), then the
  action's rules, addressing first; the template's state comes last, so E626 means "everything else is
  right". Failures echo TO except for request-level codes (E100-E108, E112).
- A body not sent as `text/xml` (or with a charset other than UTF-8), or not the form body, is E100
  ("invalid request: not a valid XML POST"), not E108: the document may be fine, the call is not.
- A misspelt element name (lower-case, hyphenated, an underscore dropped or added), an unknown element, an
  element of another action's table (SLIDE in sendSMS, DISABLEFALLBACKSMS in sendMMS) and elements inside a
  text element are E100 (the documented code for an invalid request; the key is checked first, so a wrong
  key is E104 under any spelling). Content a slide does not take (`<GIF>`) stays E229.
- CUSTOMTEXT without VALUE, without SLIDE, with two of either or another child, or with a SLIDE that is not
  a slide number 1-8 is E100: no template can have that slide, the request is malformed. A SLIDE past the end
  of a template whose slide count the simulator knows (saved through it, or given to `/_sim/templates`) is
  E241 "content does not exist": the request is well-formed, the content it overrides is not there, and the
  client fails that one message instead of stopping the account.
- More than one CUSTOMTEXT is E100, like any other repeated element: the v1 schema declares at most one
  (`CUSTOMTEXT {…}?`, §2.3) and the client sends at most one, so a second one is a builder regression.
- sendMMS without FALLBACKSMSTEXT is E622 even with a SUBJECT (§2.4: mandatory, always sent).
- CAMPAIGNREF, when present, is 1-64 printable characters without surrounding space (E714 otherwise); with
  `campaign_check` it is also required.
- Quota, interval and throughput count every authenticated, well-formed call with a known action that gets
  past all three, over all actions together (throughput per action with `throughput_per_action`); a refused
  call uses up none of them. The quota is checked first: once it is spent, every call is E120.
- SMS TEXT over 160 characters is E712; SUBJECT/CUSTOMSUBJECT over 80 is E314; a media element without an
  absolute http(s) URL is E35<slide>; two items of one type or an unknown slide child is E229; a repeated
  top-level element (other than SLIDE/CUSTOMTEXT) is E100; a BROKEN template is E625, an unknown one E241.
- A saved template is READY `template_delay_s` after saveMMS, when its N003 is due (also with no postback
  URL); sendMMS returns a fresh MMSID but does not store a template.
- Postback TIMESTAMPs say when the event happened, even when `reverse_order`/`delay_first_s` send it late.
- `status_text` is the STATUS of the outcome's postback whatever its code (N102/N202 included), never of the
  N101/N201 before it; a failed N102 carries no HANDSET (as the provider's N102 Expired sample).
- `retry_after_s` on a fault adds `Retry-After` (whole seconds) to that fault's answer only; a drop has none.
- The duplicate key is (TO, every request field but API key, TO, NAME, CAMPAIGNREF and OPERATORID).
- Ids start at a random 9-digit number per simulator, so a restarted simulator never reuses a TRACKINGID.
"""

from local.simulator.postbacks import PostbackSettings
from local.simulator.provider_faults import ProviderFault, e113_storm
from local.simulator.server import DEFAULT_API_PATH, ProviderSimulator

__all__ = ["DEFAULT_API_PATH", "PostbackSettings", "ProviderFault", "ProviderSimulator", "e113_storm"]
