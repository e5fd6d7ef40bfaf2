"""A stand-in for the SMS/MMS provider (Skycore Messaging API v1, docs/provider-protocol.md) on loopback, for
tests, benchmarks
and the local stack.

    with ProviderSimulator(api_key="TEST-KEY", postback_url="http://127.0.0.1:3000/postback/x") as sim:
        requests.post(sim.api_url, data=xml, headers={"Content-Type": "text/xml"})
        sim.wait_for_postbacks()
        assert sim.stats()["duplicates"] == 0

The API (`POST <api_url>`, default path `/API/wxml/1.3/`, also `.../index.php`) takes a raw XML body or the
older form body (`xml=`/`XML=`), checks it like the provider (protocol.py) and answers the §2 shapes with
fresh TRACKINGIDs (base64 of `SMS_<n>`/`MMS_<n>`) and numeric MMSIDs. Any other method gets HTTP 405 with an
E100 failure document. Accepted sends and saved templates produce postbacks (postbacks.py), delivered one at a
time with retries (delivery.py). A throughput limit answers E113 (throughput.py); faults replace answers
(faults.py); everything is in the audit log (audit.py).

Control API (JSON, under the same base URL):

- `GET /_sim/health`: `{"ok": true, "api_url": ...}`.
- `GET /_sim/log?since=<seq>`: `{"entries": [...], "last_seq": n}`, API calls and postback attempts after
  `seq`. Request fields are recorded with the API key redacted.
- `GET /_sim/stats`: calls by action and answer, accepted sends, E113s, faults, duplicates (accepted sends
  whose (TO, content) was seen before), postback counts.
- `GET|POST|DELETE /_sim/faults`: list / add (one fault object, or `{"faults": [...], "clear": true,
  "seed": 1}`) / clear. Fields as `Fault`.
- `GET|POST /_sim/config`: `postback_url`, `mo_postback_url`, `throughput_per_s`, `postbacks` (an object
  of `PostbackSettings` fields to change).
- `POST /_sim/inbound`: `{"kind": "sms_mo", "from", "to", "text"}`; `mms_mo` with `files`, `keyword`,
  `subject`; `subscribe` / `unsubscribe` with `mobile`, `campaign_id`; `raw` with `body`.
- `POST /_sim/templates`: `{"mms_id": "48213", "ready_in_s": 0, "outcome": "N003"}`, a template the account
  already has.
- `POST /_sim/reset`: forget calls, stats, faults, throughput window, queued postbacks, saved templates.

Decisions where the protocol reference (docs/provider-protocol.md) is silent:

- Checks run in this order: document (E100/E108), key (E102, E104), action (missing E101, unknown E107),
  throughput (E113), then the action's rules, addressing first; the template's state comes last, so E626
  means "everything else is right". Failures echo TO except for request-level codes (E100-E108, E112).
- Throughput counts every authenticated call with a known action that gets past the limiter, over all
  actions together (or per action with `throughput_per_action`); rejected calls do not use up the window.
- SMS TEXT over 160 characters is E712; SUBJECT/CUSTOMSUBJECT over 80 is E314; a media element without an
  absolute http(s) URL is E35<slide>; two items of one type or an unknown slide child is E229; a repeated
  top-level element (other than SLIDE/CUSTOMTEXT) is E100; a BROKEN template is E625, an unknown one E241.
- A saved template is READY `template_delay_s` after saveMMS, when its N003 is due (also with no postback
  URL); sendMMS returns a fresh MMSID but does not store a template.
- Postback TIMESTAMPs say when the event happened, even when `reverse_order`/`delay_first_s` send it late.
- The duplicate key is (TO, every request field but API key, TO, NAME, CAMPAIGNREF and OPERATORID).
- Ids start at a random 9-digit number per simulator, so a restarted simulator never reuses a TRACKINGID.
"""

from local.simulator.faults import Fault, e113_storm
from local.simulator.postbacks import PostbackSettings
from local.simulator.server import DEFAULT_API_PATH, ProviderSimulator

__all__ = ["DEFAULT_API_PATH", "Fault", "PostbackSettings", "ProviderSimulator", "e113_storm"]
