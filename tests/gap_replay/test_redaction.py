"""Personal data redaction (gap_replay.core.redaction): what is replaced, what medical text keeps, the counts."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from gap_replay.core.outcome import Drop
from gap_replay.core.redaction import (EMAIL_PLACEHOLDER, IPV4_PLACEHOLDER, IPV6_PLACEHOLDER, PHONE_PLACEHOLDER,
                                       Redactor, redact_batch, redact_documents, with_counts)
from gap_replay.core.schema import OUTCOME_SCHEMA, make_document

REDACTOR = Redactor()

# A guideline development group's member list, as it came out of a real WHO guideline (issue 26): names,
# affiliations, e-mail addresses and phone numbers in every national style. All invented.
MEMBERS = [
    ("Dr Amara Okoye", "Sample University Hospital, Lagos", "amara.okoye@example.org", "+234 1 555 0142"),
    ("Professor Jun Placeholder", "Invented Institute of Child Health, Tokyo", "j.placeholder@example.net",
     "+81 3-5555-0199"),
    ("Ms Rosa Fictional", "Example Nursing College, Lima", "rosa_fictional+gdg@mail.example.com", "+51 (1) 555 0123"),
    ("Dr Lena Beispiel", "Musterklinikum, Berlin", "l.beispiel@klinik.example.de", "+49 30 555 01234"),
    ("Dr Priya Example", "Demo Medical College, Mumbai", "priya.example@example.in", "+91 22 5555 0100"),
    ("Mr Tom Sample", "Sample Health Board, Manchester", "tom.sample@nhs.example.uk", "+44 (0)161 496 0742"),
    ("Dr Chloé Exemple", "Hôpital Fictif, Lyon", "chloe.exemple@chu.example.fr", "+33 4 55 55 01 23"),
    ("Dr Sam Placeholder", "Example Children's Hospital, Boston", "sam.placeholder@childrens.example.org",
     "(617) 555-0173"),
    ("Dr Ana Ficticia", "Hospital Ejemplo, Madrid", "ana.ficticia@example.es", "+34 91 555 01 77"),
    ("Dr Kwame Sample", "Example Teaching Hospital, Accra", "kwame.sample@example.com.gh", "+233 30 255 0101"),
    ("WHO Secretariat", "Department of Example Health, Geneva", "gdg-secretariat@example.int", "+41 22 555 21 11"),
    ("Helpdesk", "Fictional Poison Centre", "poisons@example.org", "1-800-555-0188"),
]


def member_list() -> str:
    lines = ["# Annex 2. Guideline development group", "",
             "The following experts served on the guideline development group (GDG):", ""]
    for name, affiliation, email, phone in MEMBERS:
        lines.append(f"- {name}, {affiliation}. Email: {email}; Tel: {phone}")
    lines += ["", "Observers: Dr Eve Example (eve.example@example.org, fax +41 22 555 43 21).", "",
              "Comments on the guideline can also be sent to the technical officer: Telephone: 0161 496 0999."]
    return "\n".join(lines)


def test_a_member_list_keeps_its_names_and_loses_every_address_and_number():
    text = member_list()
    redacted, counts = REDACTOR.redact(text)
    assert counts == {"email": len(MEMBERS) + 1, "phone": len(MEMBERS) + 2}
    for name, affiliation, email, phone in MEMBERS:
        assert email not in redacted and phone not in redacted
        assert f"- {name}, {affiliation}. Email: {EMAIL_PLACEHOLDER}; Tel: {PHONE_PLACEHOLDER}" in redacted
    assert "@" not in redacted.replace(EMAIL_PLACEHOLDER, "")
    assert "Observers: Dr Eve Example (email@example.com, fax +1 202 555 0100)." in redacted
    assert redacted.endswith("Telephone: +1 202 555 0100.")
    assert "# Annex 2. Guideline development group" in redacted
    # Redacting again changes nothing: the placeholders are not counted.
    assert REDACTOR.redact(redacted) == (redacted, {})


@pytest.mark.parametrize("text, expected, counts", [
    ("Contact: a.tan@university.example.edu.", "Contact: email@example.com.", {"email": 1}),
    ("mailto:first.last@sub.example.co.uk", "mailto:email@example.com", {"email": 1}),
    ("Tel.: +41 22 555 01 23", "Tel.: +1 202 555 0100", {"phone": 1}),
    ("call +44 20 7946 0321 or +1.202.555.0199", "call +1 202 555 0100 or +1 202 555 0100", {"phone": 2}),
    ("CDC-INFO (800) 555-0136, 1-800-555-0199 or 202.555.0147.",
     "CDC-INFO +1 202 555 0100, +1 202 555 0100 or +1 202 555 0100.", {"phone": 3}),
    ("Fax:+41223456789", "Fax:+1 202 555 0100", {"phone": 1}),
    ("Phone no. 020 7946 0000 (office)", "Phone no. +1 202 555 0100 (office)", {"phone": 1}),
    ("Mobile: 07700 900123", "Mobile: +1 202 555 0100", {"phone": 1}),
    ("TEL. 0161 496 0742 or Fax no.: 0161 496 0743", "TEL. +1 202 555 0100 or Fax no.: +1 202 555 0100", {"phone": 2}),
    ("Helpline: 0808 157 0123, daily", "Helpline: +1 202 555 0100, daily", {"phone": 1}),
    ("téléphone : 04 55 55 01 23", "téléphone : +1 202 555 0100", {"phone": 1}),
    ("the survey server at 203.0.113.45 logged", "the survey server at 192.0.2.1 logged", {"ip": 1}),
    ("see http://198.51.100.7/cgi-bin/form", "see http://192.0.2.1/cgi-bin/form", {"ip": 1}),
    ("router at IP 10.0.0.12, gateway 172.16.254.1", "router at IP 192.0.2.1, gateway 192.0.2.1", {"ip": 2}),
    ("host 2001:db8:85a3::8a2e:370:7334 and 2a00:1450:4001:82b::200e",
     "host 2001:db8::1 and 2001:db8::1", {"ip": 2}),
    ("Full form FE80:0000:0000:0000:0202:B3FF:FE1E:8329.", "Full form 2001:db8::1.", {"ip": 1}),
])
def test_each_kind_is_replaced_by_its_placeholder(text, expected, counts):
    assert REDACTOR.redact(text) == (expected, counts)


# Numbers of medical text that look like phone numbers or addresses to a careless pattern: none is touched.
MEDICAL_NUMBERS = [
    "N Engl J Med. 2019;381(12):1103-1113. doi:10.1056/NEJMoa1901234. PMID: 31234567. PMCID: PMC6789012.",
    "Lancet 2019;12:345-67; BMJ 2020;368:m1234; pages 1234-1240; pp. 555-0147",
    "Trial registration: ClinicalTrials.gov NCT01234567; EudraCT 2004-000123-45; ISRCTN12345678; "
    "PROSPERO CRD42020123456; ChiCTR-IOR-17012345; UMIN000012345; DRKS00012345.",
    "ISBN 978-3-16-148410-0; ISBN 0-306-40615-2; ISSN 1234-5678; e-ISSN 2049-3630.",
    "Give 500 mg twice daily (10-20 mg/kg/day, maximum 1,000 mg); blood pressure 120/80 mmHg; potassium "
    "3.5-5.0 mmol/L; pH 7.35-7.45; HbA1c 48 mmol/mol (6.5%); eGFR 60-89 mL/min/1.73 m2; INR 2.0-3.0.",
    "A total of 1 234 567 adults (n = 12 345 678 person-years) in 2019-2020; 18 420 employees; 1,234,567 doses.",
    "An increase of +12 345 678 cases; change +0.5 (95% CI 0.3-0.7); OR 1.234-5.678; HR 0.85 (0.72-1.01).",
    "dates 2019-12-31, 12/31/2019, 31.12.2019 and 2019.12.31; times 10:30:45 and 10:30-11:45; ratio 1:2:3.",
    "telephone interviews in 2019 with 1 234 people; telemedicine 24/7; Hotel 12345678; "
    "smartphone 0161 496 0742; cell 200 350 500 per mm3.",
    "CD4+ 200 cells/µL; HER2+ 1234 tumours; grade 3+ 12 345 events.",
    "Grant R01 HL123456, 81770123 and U54-HD-123456; GEO GSE123456; ICD-10-CM I10; SNOMED CT 38341003.",
    "MAC address 00:1A:2B:3C:4D:5E; time 12:30:45:10; chromosome 11q23.3; rs123456789.",
    "EudraCT number 2019-001234-56; NHS ref 20-1234-5678; version 1.2.3; lot 2023-555-0147-A.",
]


@pytest.mark.parametrize("text", MEDICAL_NUMBERS)
def test_the_numbers_of_medical_text_are_left_alone(text):
    assert REDACTOR.redact(text) == (text, {})


@pytest.mark.parametrize("text", [
    "1.4.2.3 Investigations in hospital",             # an outline number heading a line
    "## 10.2.1.4 Dosing in children",
    "as recommended in 3.11.4.1 and 2.13.10.4",       # small numbers: section or version numbers
    "Python 3.11.4.1 and R 4.1.2",
    "See section 192.168.100.200 of the annex",       # after a section word, never an address
    "Table 128.4.2.1 lists the doses",
    "software version 2.13.100.1 was used",
    "8.8.8.8 and 1.1.1.1",                            # single digits: outline-like (and public resolvers)
    "values 300.1.2.4 and 1.2.3.4.5 and 01.02.03.04",  # not an address: > 255, five parts, leading zeros
    "10.1016/j.cell.2019.01.001",
])
def test_section_and_version_numbers_are_not_ip_addresses(text):
    assert REDACTOR.redact(text) == (text, {})


def test_a_small_dotted_quad_said_to_be_an_address_is_one():
    assert REDACTOR.redact("the IP address 62.24.35.99 was blocked")[1] == {"ip": 1}
    assert REDACTOR.redact("values 62.24.35.99 were")[1] == {}


def test_each_kind_can_be_turned_off():
    text = "Write to a.b@example.net, call +41 22 555 01 23, server 203.0.113.45."
    assert Redactor(emails=False).redact(text) == (
        "Write to a.b@example.net, call +1 202 555 0100, server 192.0.2.1.", {"phone": 1, "ip": 1})
    assert Redactor(phones=False).redact(text)[1] == {"email": 1, "ip": 1}
    assert Redactor(ips=False).redact(text)[1] == {"email": 1, "phone": 1}
    assert Redactor(False, False, False).redact(text) == (text, {})
    assert Redactor(False, True, False).kinds == ("phone",)


def test_placeholders_are_reserved_values_and_never_counted():
    for placeholder in (EMAIL_PLACEHOLDER, PHONE_PLACEHOLDER, IPV4_PLACEHOLDER, IPV6_PLACEHOLDER):
        text = f"value: {placeholder}."
        assert REDACTOR.redact(text) == (text, {})
    assert EMAIL_PLACEHOLDER.endswith("@example.com") and PHONE_PLACEHOLDER.endswith("555 0100")


def test_counts_go_into_extra_beside_its_other_keys():
    assert json.loads(with_counts(None, {"email": 2})) == {"redacted": {"email": 2}}
    merged = json.loads(with_counts('{"pmid_version": 1, "redacted": {"email": 1}}', {"email": 2, "ip": 1}))
    assert merged == {"pmid_version": 1, "redacted": {"email": 3, "ip": 1}}


def test_a_batch_is_redacted_on_its_kept_rows_only():
    kept = make_document(id="replay:x:1", source="replay", text="Ask me at me@example.org.", extra={"set": "c4"})
    dropped = make_document(id="replay:x:2", source="replay", text="Or them@example.org.")
    rows = [{**kept, "drop_reason": None, "drop_detail": None},
            {**dropped, "drop_reason": "too_short", "drop_detail": "3 words"}]
    batch = pa.RecordBatch.from_pylist(rows, schema=OUTCOME_SCHEMA)
    out = redact_batch(batch, REDACTOR)
    assert out.schema.equals(OUTCOME_SCHEMA)
    assert out.column("text").to_pylist() == ["Ask me at email@example.com.", "Or them@example.org."]
    assert [json.loads(extra) if extra else None for extra in out.column("extra").to_pylist()] == \
        [{"set": "c4", "redacted": {"email": 1}}, None]
    assert out.column("id").to_pylist() == batch.column("id").to_pylist()
    assert redact_batch(batch, Redactor(False, False, False)) is batch


def test_a_parsers_outcomes_are_redacted_documents_only():
    document = make_document(id="replay:x:1", source="replay", text="Mail me@example.org.", extra={"set": "c4"})
    drop = Drop("replay:x:2", "empty_text", None, "replay")
    out = list(redact_documents([document, drop], REDACTOR))
    assert out[0]["text"] == "Mail email@example.com." and json.loads(out[0]["extra"])["redacted"] == {"email": 1}
    assert out[1] is drop and document["text"] == "Mail me@example.org."  # the input is not changed
    assert list(redact_documents([document], Redactor(False, False, False))) == [document]


def test_redaction_costs_little_where_there_is_nothing_to_redact():
    """Most texts only pay for the gates: a few substring searches and three regexes with a literal first
    character. A long text with none of the triggers stays cheap (a loose bound, for slow machines)."""
    import time

    text = ("Asthma is the most common chronic disease of childhood (95% CI 1.02 to 1.63; p = 0.001). " * 600)
    assert not re.search(r"[@+]", text)
    started = time.process_time()
    for _ in range(20):
        REDACTOR.redact(text)
    per_char = (time.process_time() - started) / 20 / len(text)
    assert per_char < 50e-9, f"{per_char * 1e9:.1f} ns per character"
